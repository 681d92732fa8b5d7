import HummingbirdCore
import NIOCore
import NIOHTTPTypes

extension NarInfoFastPath {
    /// Puts a `NarInfoFastPath` right after Hummingbird's `HTTPConnectionStateHandler` at a plain HTTP
    /// connection's first request, then leaves: Hummingbird adds that handler only after Capstan's
    /// extra ones, so it is found at the first read rather than when this is added. Without it the
    /// connection is served by the router alone.
    final class Installer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart

        private let answers: NarInfoAnswers

        init(answers: NarInfoAnswers) {
            self.answers = answers
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let pipeline = context.pipeline.syncOperations
            do {
                let connectionState = try pipeline.handler(type: HTTPConnectionStateHandler.self)
                try pipeline.addHandler(NarInfoFastPath(answers: answers), position: .after(connectionState))
            } catch {
                answers.logger.debug(
                    "every narinfo request of this connection goes through the router",
                    metadata: ["error": "\(error)"])
            }
            context.fireChannelRead(data)
            pipeline.removeHandler(context: context, promise: nil)
        }
    }
}
