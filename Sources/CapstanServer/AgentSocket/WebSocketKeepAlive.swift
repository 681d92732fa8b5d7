import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket

/// Pings the other end of a WebSocket every `period` and closes the connection when a ping is not
/// answered by the next one: a dead agent is noticed within two periods.
///
/// It lives in the connection's pipeline and runs on its event loop, so a connection costs a
/// scheduled timer rather than a task sleeping beside its handler (kilobytes each, ten thousand
/// agents over): the socket's own handler may be busy, or waiting for the database, and the pongs
/// are still seen.
final class WebSocketKeepAlive: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let period: TimeAmount
    /// The payload of the ping not answered yet.
    private var unanswered: ByteBuffer?
    private var sent: UInt64 = 0
    private var timer: Scheduled<Void>?

    init(period: TimeAmount) {
        self.period = period
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { schedule(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        schedule(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.opcode == .pong, frame.fin, let expected = unanswered, frame.unmaskedData == expected {
            unanswered = nil
        }
        context.fireChannelRead(data)
    }

    private func schedule(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: period) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.tick(context)
        }
    }

    private func tick(_ context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if unanswered != nil {
            // The last ping went unanswered for a whole period: say why, then close.
            var reason = context.channel.allocator.buffer(capacity: 16)
            reason.write(webSocketErrorCode: .goingAway)
            reason.writeString("ping timeout")
            let close = WebSocketFrame(fin: true, opcode: .connectionClose, data: reason)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(close)).whenComplete { _ in bound.value.close(promise: nil) }
            return
        }
        sent &+= 1
        var payload = context.channel.allocator.buffer(capacity: 8)
        payload.writeInteger(sent)
        unanswered = payload
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .ping, data: payload)), promise: nil)
        schedule(context)
    }
}

extension WebSocketKeepAlive {
    /// Adds a keep-alive to an upgraded connection, just after the frame decoder: it sees the pongs
    /// before the socket's handler and answers nothing itself.
    static func install(on channel: any Channel, period: Duration) async throws {
        try await channel.eventLoop.submit {
            let decoder = try channel.pipeline.syncOperations.handler(
                type: ByteToMessageHandler<WebSocketFrameDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(
                WebSocketKeepAlive(period: TimeAmount(period)), position: .after(decoder))
        }.get()
    }
}
