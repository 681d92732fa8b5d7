import NIOCore
import Synchronization

/// Whether a connection's client has hung up (closed its side, or the connection is gone): set by the
/// connection's `RequestTracker`, read by a request that waits before answering (an upload waiting for
/// its references), which then stops waiting. With remote half-closure allowed, a client that goes away
/// does not close the channel, so the channel's state alone does not say it.
final class HangUpSignal: Sendable {
    private let hungUp = Atomic<Bool>(false)

    var isSet: Bool { hungUp.load(ordering: .relaxed) }

    func set() { hungUp.store(true, ordering: .relaxed) }

    /// The signal of `channel`'s tracker; for a channel without one, whether the channel is closed.
    static func of(_ channel: any Channel) async -> @Sendable () -> Bool {
        let signal = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: RequestTracker.self).hangUp
        }.get()
        if let signal { return { signal.isSet || !channel.isActive } }
        return { !channel.isActive }
    }
}
