import NIOCore
import NIOHTTP1

/// Answers narinfo requests whose answer is already in memory (`NarInfoAnswers`) on the connection's
/// event loop, with no task and no router: the hop to Swift's cooperative pool and back cost more
/// than everything the route does. It sits right after the HTTP/1 decoder, before the conversion to
/// swift-http-types, and writes each answer as finished HTTP/1 bytes from the response encoder's place
/// in the pipeline: no header fields are built, converted or encoded per request. Anything else (a
/// miss, an unknown token, another URL, a body, an upgrade) goes on to Hummingbird unchanged, which
/// stays the one source of truth.
///
/// HTTP/1.1 pipelining: answers leave in request order. Once a request was forwarded, later ones are
/// forwarded too until that request's response has ended (its `.end` passes through here), so no
/// answer overtakes a slower one. Answers of one read are flushed together when the read ends. Nothing
/// is answered here while the socket is not writable: a client that sends without reading is held back
/// by Hummingbird's back-pressure, not buffered here.
///
/// Hummingbird's connection state handler never sees the requests answered here, so this handler
/// keeps the connection's idle timeout itself (see `+IdleTimeout`), and tells the connection registry
/// now and then that the connection is in use.
final class NarInfoFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let answers: NarInfoAnswers
    private let registry: ConnectionRegistry
    /// The response encoder's context: bytes written there go to the socket as they are.
    private let encoder: ChannelHandlerContext
    let idleTimeout: TimeAmount?
    /// Forwarded requests whose response has not ended yet: until then nothing is answered here.
    var unanswered = 0
    /// Inside a request answered here: its remaining parts go no further.
    private var swallowing = false
    /// Set for good once the connection does anything unusual: an upgrade, `Connection: close`, an error.
    private var forwardingOnly = false
    /// Answers written since the last flush.
    private var unflushed = false
    private var date = HTTPDate()
    private var credentials = ConnectionCredentials()
    /// When the connection last read a request part or ended a response.
    var lastActivity = NIODeadline.now()
    /// Between a request's head and its end.
    var readingRequest = false
    var idleCheck: Scheduled<Void>?
    /// When the registry was last told that the connection is in use.
    private var registryTold = NIODeadline.uptimeNanoseconds(0)

    init(
        answers: NarInfoAnswers, registry: ConnectionRegistry, encoder: ChannelHandlerContext, idleTimeout: TimeAmount?
    ) {
        self.answers = answers
        self.registry = registry
        self.encoder = encoder
        self.idleTimeout = idleTimeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        let now = NIODeadline.now()
        lastActivity = now
        switch part {
        case .head(let request):
            readingRequest = true
            if !forwardingOnly, unanswered == 0, context.channel.isWritable,
                let answer = answers.answer(to: request, credentials: &credentials)
            {
                swallowing = true
                let bytes = answer.encoded(
                    date: date.now(), serverName: answers.serverName, allocator: context.channel.allocator)
                encoder.write(NIOAny(IOData.byteBuffer(bytes)), promise: nil)
                unflushed = true
                tellRegistry(context.channel, now: now)
                return
            }
            if !NarInfoAnswers.keepsConnectionPlain(request) { forwardingOnly = true }
            unanswered += 1
        case .body:
            if swallowing { return }
        case .end:
            readingRequest = false
            if swallowing {
                swallowing = false
                return
            }
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush, so the answers to requests pipelined in one read share a system call.
        if unflushed {
            unflushed = false
            encoder.flush()
        }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(0, unanswered - 1)
            if unanswered == 0 {
                lastActivity = .now()
                scheduleIdleCheck(context)
            }
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        forwardingOnly = true
        context.fireErrorCaught(error)
    }

    /// The registry closes the connection idle the longest to make room; a connection answered only
    /// here would otherwise look idle since its last forwarded request. Once a second is enough for that order.
    private func tellRegistry(_ channel: any Channel, now: NIODeadline) {
        guard now - registryTold >= .seconds(1) else { return }
        registryTold = now
        registry.busy(channel)
        registry.idle(channel)
    }
}
