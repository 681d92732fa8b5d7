import Synchronization

/// Tells uploads waiting for their references, in this process, that a path was stored in a cache.
/// A count of arrivals lets a waiter that looked at the database first notice a path stored since,
/// without a window in which the news is lost.
final class PathArrivals: Sendable {
    private struct Waiter {
        let cacheID: String
        var continuation: CheckedContinuation<Void, Never>?
    }

    private struct State {
        var count: UInt64 = 0
        var nextID: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        /// Waiters cancelled before they registered their continuation.
        var cancelled: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// Arrivals so far, in any cache: what `wait(forNewIn:since:atMost:)` compares against.
    var count: UInt64 { state.withLock { $0.count } }

    /// A path was stored in the cache: its waiters look again.
    func stored(inCache cacheID: String) {
        let waking = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count &+= 1
            var waking: [CheckedContinuation<Void, Never>] = []
            for (id, waiter) in state.waiters where waiter.cacheID == cacheID {
                if let continuation = waiter.continuation { waking.append(continuation) }
                state.waiters[id] = nil
            }
            return waking
        }
        for continuation in waking { continuation.resume() }
    }

    /// Returns when a path is stored in the cache (at once if any arrived since `seen`), after
    /// `atMost`, or when the task is cancelled.
    func wait(forNewIn cacheID: String, since seen: UInt64, atMost: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.arrival(in: cacheID, since: seen) }
            group.addTask { try? await Task.sleep(for: atMost) }
            await group.next()
            group.cancelAll()
        }
    }

    private func arrival(in cacheID: String, since seen: UInt64) async {
        let id = state.withLock { state -> UInt64 in
            state.nextID &+= 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.cancelled.remove(id) != nil || state.count != seen { return true }
                    state.waiters[id] = Waiter(cacheID: cacheID, continuation: continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiting = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return waiter.continuation
            }
            waiting?.resume()
        }
        // A cancellation after the arrival left its mark: cleared, so marks never pile up.
        _ = state.withLock { $0.cancelled.remove(id) }
    }
}
