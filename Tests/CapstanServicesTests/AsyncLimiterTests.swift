import CapstanServices
import Synchronization
import Testing

/// The turns a fleet's reports take: never more than the limit at once, first come first served, and a
/// waiter that gives up takes nobody's turn.
@Suite("Turns of the async limiter")
struct AsyncLimiterTests {
    final class Log: Sendable {
        private let state = Mutex((running: 0, most: 0, order: [Int]()))
        func enter(_ n: Int) {
            state.withLock {
                $0.running += 1; $0.most = max($0.most, $0.running); $0.order.append(n)
            }
        }
        func leave() { state.withLock { $0.running -= 1 } }
        var most: Int { state.withLock { $0.most } }
        var order: [Int] { state.withLock { $0.order } }
    }

    @Test(.timeLimit(.minutes(10)))
    func noMoreThanTheLimitRunAndWaitersGoInTheOrderTheyCame() async throws {
        let limiter = AsyncLimiter(limit: 3)
        let log = Log()
        // One stream per holder: a stream has one consumer.
        let releases = (0..<3).map { _ in AsyncStream.makeStream(of: Void.self) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Three hold their turns until released; the rest line up one by one, in order.
            for n in 0..<3 {
                group.addTask {
                    try await limiter.run {
                        log.enter(n); for await _ in releases[n].stream { break }; log.leave()
                    }
                }
            }
            while log.order.count < 3 { try await Task.sleep(for: .milliseconds(2)) }
            for n in 3..<40 {
                group.addTask {
                    try await limiter.run {
                        log.enter(n); await Task.yield(); log.leave()
                    }
                }
                while limiter.waiting < n - 2 { try await Task.sleep(for: .milliseconds(2)) }
            }
            #expect(limiter.waiting == 37)
            for release in releases { release.continuation.finish() }
            try await group.waitForAll()
        }
        #expect(log.most == 3)
        #expect(Array(log.order.dropFirst(3)) == Array(3..<40))
        #expect(limiter.waiting == 0)
    }

    @Test(.timeLimit(.minutes(10)))
    func aCancelledWaiterLeavesTheLineAndTakesNoTurn() async throws {
        let limiter = AsyncLimiter(limit: 1)
        let log = Log()
        let (holder, release) = try await Self.holdTheOnlyTurn(of: limiter, log: log)
        let quitter = Task {
            try await limiter.run {
                log.enter(1); log.leave()
            }
        }
        while limiter.waiting < 1 { try await Task.sleep(for: .milliseconds(2)) }
        let patient = Task {
            try await limiter.run {
                log.enter(2); log.leave()
            }
        }
        while limiter.waiting < 2 { try await Task.sleep(for: .milliseconds(2)) }
        quitter.cancel()
        await #expect(throws: CancellationError.self) { try await quitter.value }
        #expect(limiter.waiting == 1)
        release.yield()
        try await holder.value
        try await patient.value
        #expect(log.order == [0, 2])
        // The turn came back: the next one runs at once.
        try await limiter.run {
            log.enter(3); log.leave()
        }
        #expect(log.most == 1)
    }

    @Test(.timeLimit(.minutes(10)))
    func aTaskCancelledBeforeItWaitsDoesNotRun() async throws {
        let limiter = AsyncLimiter(limit: 1)
        let log = Log()
        let (holder, release) = try await Self.holdTheOnlyTurn(of: limiter, log: log)
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return try await limiter.run {
                log.enter(1); log.leave()
            }
        }
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(limiter.waiting == 0)
        release.yield()
        try await holder.value
        #expect(log.order == [0])
    }

    /// A task that takes the limiter's one turn (logged as 0) and keeps it until the continuation yields.
    static func holdTheOnlyTurn(of limiter: AsyncLimiter, log: Log) async throws
        -> (Task<Void, any Error>, AsyncStream<Void>.Continuation)
    {
        let release = AsyncStream.makeStream(of: Void.self)
        let holder = Task {
            try await limiter.run {
                log.enter(0); for await _ in release.stream { break }; log.leave()
            }
        }
        while log.order.isEmpty { try await Task.sleep(for: .milliseconds(2)) }
        return (holder, release.continuation)
    }
}
