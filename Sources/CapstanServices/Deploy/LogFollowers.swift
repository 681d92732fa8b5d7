import Foundation
import Synchronization

/// The deployment logs this server is following for clients. Graceful shutdown ends them: a follower
/// sends the lines logged so far and stops instead of waiting for lines that may never come.
final class LogFollowers: Sendable {
    private struct State {
        var ended = false
        var wakes: [UUID: AsyncStream<Void>.Continuation] = [:]
    }

    private let state = Mutex(State())

    /// Registers a follower's wake-up, which `end()` triggers.
    func add(_ wake: AsyncStream<Void>.Continuation) -> UUID {
        let id = UUID()
        state.withLock { $0.wakes[id] = wake }
        return id
    }

    func remove(_ id: UUID) {
        _ = state.withLock { $0.wakes.removeValue(forKey: id) }
    }

    /// True once the server shuts down; a follower that starts afterwards ends after the log so far.
    var haveEnded: Bool { state.withLock { $0.ended } }

    func end() {
        let wakes = state.withLock { state in
            state.ended = true
            return Array(state.wakes.values)
        }
        for wake in wakes { wake.yield() }
    }
}
