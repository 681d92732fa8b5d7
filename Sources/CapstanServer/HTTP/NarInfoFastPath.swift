import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers narinfo requests whose answer is already in memory (`NarInfoAnswers`) on the connection's
/// event loop, with no task and no router: the hop to Swift's cooperative pool and back cost more
/// than everything the route does. Anything else (a miss, an unknown token, another URL, a body, an
/// upgrade) goes on to Hummingbird unchanged, which stays the one source of truth.
///
/// HTTP/1.1 pipelining: answers leave in request order. Once a request was forwarded, later ones are
/// forwarded too until that request's response has ended (its `.end` passes through here), so no
/// answer overtakes a slower one. Nothing is answered here while the socket is not writable either:
/// a client that sends without reading is held back by Hummingbird's back-pressure, not buffered.
/// It sits right after Hummingbird's `HTTPConnectionStateHandler` (see `Installer`), so the idle
/// timeout and graceful shutdown count the requests answered here.
final class NarInfoFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let answers: NarInfoAnswers
    /// Forwarded requests whose response has not ended yet: until then nothing is answered here.
    private var unanswered = 0
    /// Inside a request answered here: its remaining parts go no further.
    private var swallowing = false
    /// Set for good once the connection does anything unusual: an upgrade, `Connection: close`, an error.
    private var forwardingOnly = false
    private var date = HTTPDate()

    init(answers: NarInfoAnswers) {
        self.answers = answers
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let request):
            if !forwardingOnly, unanswered == 0, context.channel.isWritable,
                let answer = answers.answer(to: request, date: &date)
            {
                swallowing = true
                context.write(wrapOutboundOut(.head(answer.head)), promise: nil)
                if let body = answer.body { context.write(wrapOutboundOut(.body(body)), promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            if !NarInfoAnswers.keepsConnectionPlain(request) { forwardingOnly = true }
            unanswered += 1
        case .body, .end:
            guard !swallowing else {
                if case .end = part { swallowing = false }
                return
            }
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { unanswered = max(0, unanswered - 1) }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        forwardingOnly = true
        context.fireErrorCaught(error)
    }
}
