import NIOCore
import Synchronization

/// Lets at most `limit` tasks at a time run their work; the others wait their turn, first come first
/// served, for as long as it takes (a cancelled waiter leaves the line).
///
/// A fleet's reports go through one: 10,000 agents reporting at once would otherwise queue 10,000
/// requests for the database's few pooled connections, where each times out after 10 s and an
/// activation or a page waits behind all of them.
public final class AsyncLimiter: Sendable {
    public let limit: Int

    private struct State {
        var running = 0
        var nextTicket: UInt64 = 0
        /// Tickets waiting, oldest first.
        var line = CircularBuffer<UInt64>()
        var continuations: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        /// Given a turn, or cancelled, before their continuation was stored.
        var grantedEarly: Set<UInt64> = []
        var cancelledEarly: Set<UInt64> = []
    }

    private let state = Mutex(State())

    public init(limit: Int) {
        precondition(limit > 0, "a limiter lets at least one task run")
        self.limit = limit
    }

    /// Runs `body` once fewer than `limit` others run theirs. Throws `CancellationError` when the task is
    /// cancelled while it waits (its turn is not taken).
    public func run<T>(_ body: () async throws -> T) async throws -> T {
        try await acquire()
        defer { release() }
        return try await body()
    }

    /// How many tasks wait for a turn now.
    public var waiting: Int { state.withLock { $0.line.count } }

    private func acquire() async throws {
        let ticket: UInt64? = state.withLock { state in
            if state.running < limit {
                state.running += 1
                return nil
            }
            state.nextTicket += 1
            state.line.append(state.nextTicket)
            return state.nextTicket
        }
        guard let ticket else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let early: Result<Void, any Error>? = state.withLock { state in
                    if state.grantedEarly.remove(ticket) != nil { return .success(()) }
                    if state.cancelledEarly.remove(ticket) != nil { return .failure(CancellationError()) }
                    state.continuations[ticket] = continuation
                    return nil
                }
                if let early { continuation.resume(with: early) }
            }
        } onCancel: {
            let waiting: CheckedContinuation<Void, any Error>? = state.withLock { state in
                guard let index = state.line.firstIndex(of: ticket) else { return nil }  // already given its turn
                state.line.remove(at: index)
                guard let continuation = state.continuations.removeValue(forKey: ticket) else {
                    state.cancelledEarly.insert(ticket)
                    return nil
                }
                return continuation
            }
            waiting?.resume(throwing: CancellationError())
        }
    }

    /// The turn passes straight to the oldest waiter; `running` only drops when nobody waits.
    private func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLock { state in
            guard let ticket = state.line.popFirst() else {
                state.running -= 1
                return nil
            }
            guard let continuation = state.continuations.removeValue(forKey: ticket) else {
                state.grantedEarly.insert(ticket)
                return nil
            }
            return continuation
        }
        next?.resume()
    }
}
