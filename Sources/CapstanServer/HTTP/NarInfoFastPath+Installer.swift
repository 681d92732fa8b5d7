import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

extension NarInfoFastPath {
    /// Puts a `NarInfoFastPath` right before Hummingbird's `HTTP1ToHTTPServerCodec` when a connection is
    /// known to stay HTTP (Hummingbird adds its extra handlers, this one among them, only then, right
    /// after that codec), so it sees the first request too; then leaves at that request.
    final class Installer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart

        private let answers: NarInfoAnswers
        private let registry: ConnectionRegistry
        private let idleTimeout: TimeAmount?

        /// `idleTimeout` is the connection's: Hummingbird's state handler is given none (see `NarInfoFastPath`).
        init(answers: NarInfoAnswers, registry: ConnectionRegistry, idleTimeout: TimeAmount?) {
            self.answers = answers
            self.registry = registry
            self.idleTimeout = idleTimeout
        }

        func handlerAdded(context: ChannelHandlerContext) {
            let pipeline = context.pipeline.syncOperations
            do {
                let codec = try pipeline.handler(type: HTTP1ToHTTPServerCodec.self)
                let encoder = try pipeline.context(handlerType: HTTPResponseEncoder.self)
                try pipeline.addHandler(
                    NarInfoFastPath(answers: answers, registry: registry, encoder: encoder, idleTimeout: idleTimeout),
                    position: .before(codec))
            } catch {
                // Hummingbird's pipeline changed shape; without its idle timeout the connection must not stay.
                answers.logger.error(
                    "no narinfo fast path on this connection; closing it", metadata: ["error": "\(error)"])
                context.close(promise: nil)
            }
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
