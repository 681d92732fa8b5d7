import Logging
import NIOCore

/// The first handler of every connection, before HTTP parsing: it counts the connection in the
/// registry and gives its first request a deadline and a size bound for the request line and
/// headers. A connection that has not sent them within `headerTimeout` is closed; one whose
/// headers grow past `maxHeaderBytes` is answered 431 and closed. Requests after the first are
/// bounded by the HTTP layer (the idle timeout, the decoder's header limits, `RequestTracker`).
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let registry: ConnectionRegistry
    private let headerTimeout: TimeAmount
    private let maxHeaderBytes: Int
    private let logger: Logger
    /// Bytes of the first request seen so far, until its headers end; nil afterwards.
    private var headerBytes: Int? = 0
    /// The last bytes seen, to find a `\r\n\r\n` split between reads.
    private var tail: [UInt8] = []
    private var deadline: Scheduled<Void>?
    private var registered = false
    private var refused = false

    init(registry: ConnectionRegistry, headerTimeout: TimeAmount, maxHeaderBytes: Int, logger: Logger) {
        self.registry = registry
        self.headerTimeout = headerTimeout
        self.maxHeaderBytes = maxHeaderBytes
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context)
        context.fireChannelActive()
    }

    /// Why the guard closes its connection; sent through the pipeline, so the guard acts on its own loop.
    enum Close: Sendable {
        case headerTimeout
        /// The registry made room for a newer connection.
        case evicted
    }

    private func start(_ context: ChannelHandlerContext) {
        guard !registered else { return }
        registered = true
        registry.opened(context.channel)
        let pipeline = context.pipeline
        deadline = context.eventLoop.scheduleTask(in: headerTimeout) {
            pipeline.fireUserInboundEventTriggered(Close.headerTimeout)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event as? Close {
        case .headerTimeout?:
            guard headerBytes != nil else { return }
            logger.debug("closing a connection that sent no complete request headers in time")
            closeQuietly(context)
        case .evicted?:
            guard registry.isEvicting(context.channel) else { return }
            closeQuietly(context)
        case nil:
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// Closes the connection as a client that went away: the HTTP layer (and the WebSocket upgrade
    /// negotiation) see their input end first, which they take for a client gone, not an error.
    private func closeQuietly(_ context: ChannelHandlerContext) {
        headerBytes = nil
        deadline?.cancel()
        deadline = nil
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop(context)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop(context)
    }

    private func stop(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        if registered {
            registered = false
            registry.closed(context.channel)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Answered 431 and closing: the rest of those headers goes nowhere.
        if refused { return }
        guard let seen = headerBytes else {
            context.fireChannelRead(data)
            return
        }
        let buffer = unwrapInboundIn(data)
        let bytes = buffer.readableBytesView
        if let end = Self.endOfHeaders(in: bytes, after: tail) {
            // `end` counts bytes of this buffer up to the blank line.
            guard seen + end <= maxHeaderBytes else { return refuse(context) }
            headerBytes = nil
            tail = []
            deadline?.cancel()
            deadline = nil
            registry.busy(context.channel)
            context.fireChannelRead(data)
            return
        }
        guard seen + bytes.count <= maxHeaderBytes else { return refuse(context) }
        headerBytes = seen + bytes.count
        tail = Array((tail + bytes.suffix(3)).suffix(3))
        context.fireChannelRead(data)
    }

    /// The number of bytes of `bytes` up to and including the first `\r\n\r\n`, which may begin
    /// in `tail` (the bytes before them); nil when there is none.
    static func endOfHeaders(in bytes: ByteBufferView, after tail: [UInt8]) -> Int? {
        let terminator: [UInt8] = [13, 10, 13, 10]
        var matched = 0
        // Carry a partial match over from the bytes seen before.
        for byte in tail {
            matched = byte == terminator[matched] ? matched + 1 : (byte == 13 ? 1 : 0)
        }
        for (offset, byte) in bytes.enumerated() {
            matched = byte == terminator[matched] ? matched + 1 : (byte == 13 ? 1 : 0)
            if matched == 4 { return offset + 1 }
        }
        return nil
    }

    private func refuse(_ context: ChannelHandlerContext) {
        refused = true
        headerBytes = nil
        deadline?.cancel()
        deadline = nil
        logger.debug("request headers too large; answering 431", metadata: ["limit": "\(maxHeaderBytes)"])
        let answer = ByteBuffer(
            string:
                "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        // Written below the HTTP handlers, straight to the socket; nothing of the request goes up.
        let channel = context.channel
        context.writeAndFlush(NIOAny(answer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
