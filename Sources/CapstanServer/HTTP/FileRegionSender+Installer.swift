import NIOCore
import NIOHTTP1
import NIOHTTPTypes

extension FileRegionSender {
    /// Puts a `FileRegionSender` right above the HTTP/1 response encoder once a connection is known to
    /// stay HTTP: Hummingbird adds its extra handlers only then, never to an upgraded WebSocket, whose
    /// outbound data are frames rather than HTTP parts.
    final class Installer: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart

        func handlerAdded(context: ChannelHandlerContext) {
            do {
                let pipeline = context.pipeline.syncOperations
                let encoder = try pipeline.handler(type: HTTPResponseEncoder.self)
                try pipeline.addHandler(FileRegionSender(), position: .after(encoder))
            } catch {
                context.fireErrorCaught(error)
            }
        }
    }
}
