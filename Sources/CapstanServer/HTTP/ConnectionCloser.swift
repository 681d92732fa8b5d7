import Logging
import ServiceLifecycle

/// Bounds graceful shutdown: followed logs end at once with the lines logged so far, connections get
/// `grace` to finish on their own (agents are sent a close frame and answer it, requests in flight end),
/// then every connection still open is closed, all at once; a client that answers slowly, or a log
/// followed until its deployment ends, cannot hold the server up.
struct ConnectionCloser: Service {
    let registry: ConnectionRegistry
    let grace: Duration
    /// Ends the streams that wait for events rather than for the client (followed logs).
    let endStreams: @Sendable () -> Void
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        endStreams()
        // Not awaited: the server's own shutdown, signalled next, goes on meanwhile.
        Task { [registry, grace, logger] in
            try? await Task.sleep(for: grace)
            let open = registry.channels
            guard !open.isEmpty else { return }
            logger.notice(
                "closing the connections still open after the shutdown grace", metadata: ["count": "\(open.count)"])
            // Each close runs on its connection's own event loop.
            for channel in open { channel.close(promise: nil) }
        }
    }
}
