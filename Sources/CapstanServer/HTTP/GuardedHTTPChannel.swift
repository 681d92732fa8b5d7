import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore

/// Capstan's HTTP/1 connections with the WebSocket upgrade of the agents, each guarded from its
/// first byte: registered in the `ConnectionRegistry` (the cap), its first request's headers
/// bounded in time and size (`ConnectionGuard`), later requests tracked (`RequestTracker`) and
/// bounded by the idle timeout. Plain HTTP connections get a `FileRegionSender`, which sends NARs
/// from their files, and a `NarInfoFastPath`, which answers narinfo requests from memory.
struct GuardedHTTPChannel: ServerChildChannel {
    typealias Value = HTTP1WebSocketUpgradeChannel.Value

    let inner: HTTP1WebSocketUpgradeChannel
    let registry: ConnectionRegistry
    let limits: HTTPLimits
    let logger: Logger

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuard(
                    registry: registry, headerTimeout: TimeAmount(limits.headerTimeout),
                    maxHeaderBytes: limits.maxHeaderBytes, logger: self.logger),
                position: .first)
        }.flatMap {
            inner.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the WebSocket upgrade, every connection guarded (see `GuardedHTTPChannel`).
    /// With `narInfoAnswers`, narinfo requests answered from memory skip the router (`NarInfoFastPath`).
    static func guardedHTTP1WebSocketUpgrade(
        webSocketRouter: Router<AgentSocketContext>, webSocket: WebSocketServerConfiguration, limits: HTTPLimits,
        registry: ConnectionRegistry, narInfoAnswers: NarInfoAnswers?, logger: Logger
    ) -> HTTPServerBuilder {
        let webSocketResponder = webSocketRouter.buildResponder()
        // The decoder's limits are the guard's: the first request never reaches them (the guard
        // answers 431 first), later ones are answered 431 by the tracker.
        var decoder = HTTP1Channel.Configuration.DecoderConfiguration()
        decoder.maxHeaderListSize = limits.maxHeaderBytes
        decoder.maxHeaderFieldSize = limits.maxHeaderBytes
        let idleTimeout = TimeAmount(limits.idleTimeout)
        // With the fast path, the idle timeout is its to keep: Hummingbird's never sees the requests it answers.
        let http1 = HTTP1Channel.Configuration(
            additionalChannelHandlers: [RequestTracker(registry: registry), FileRegionSender.Installer()]
                + (narInfoAnswers.map {
                    [NarInfoFastPath.Installer(answers: $0, registry: registry, idleTimeout: idleTimeout)]
                } ?? []),
            idleTimeout: narInfoAnswers == nil ? idleTimeout : nil, httpDecoderConfiguration: decoder)
        return HTTPServerBuilder { responder in
            GuardedHTTPChannel(
                inner: HTTP1WebSocketUpgradeChannel(
                    responder: responder, webSocketResponder: webSocketResponder,
                    configuration: .init(http1: http1, ws: webSocket)),
                registry: registry, limits: limits, logger: logger)
        }
    }
}
