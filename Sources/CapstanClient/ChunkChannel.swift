import Dispatch
import NIOCore
import Synchronization

/// Carries chunks from a blocking producer thread (the NAR writer) to an async consumer (the
/// HTTP body) with back-pressure: the producer blocks while `capacity` chunks wait unread.
public final class ChunkChannel: Sendable {
    private struct State {
        var queue: [ByteBuffer] = []
        var finished = false
        var failure: (any Error)?
        var cancelled = false
        var consumer: CheckedContinuation<ByteBuffer?, any Error>?
        var producerWaiting = false
    }

    private let state = Mutex(State())
    private let producerWakeup = DispatchSemaphoreBox()
    private let capacity: Int
    /// Called once, when the consumer has taken the last chunk (or its end was an error or cancellation).
    private let onEnd: (@Sendable () -> Void)?
    private let ended = Atomic<Bool>(false)

    public init(capacity: Int = 4, onEnd: (@Sendable () -> Void)? = nil) {
        self.capacity = capacity
        self.onEnd = onEnd
    }

    private func reachedEnd() {
        guard let onEnd, !ended.exchange(true, ordering: .relaxed) else { return }
        onEnd()
    }

    public struct Cancelled: Error {}

    /// Producer side: hands over a chunk, blocking while the consumer is behind.
    public func send(_ buffer: ByteBuffer) throws {
        while true {
            let outcome: (resume: CheckedContinuation<ByteBuffer?, any Error>?, mustWait: Bool) = try state.withLock {
                state in
                if state.cancelled { throw Cancelled() }
                if let consumer = state.consumer {
                    state.consumer = nil
                    return (consumer, false)
                }
                if state.queue.count < capacity {
                    state.queue.append(buffer)
                    return (nil, false)
                }
                state.producerWaiting = true
                return (nil, true)
            }
            if let resume = outcome.resume {
                resume.resume(returning: buffer)
                return
            }
            if !outcome.mustWait { return }
            producerWakeup.wait()
        }
    }

    /// Producer side: no more chunks (or a failure the consumer will see).
    public func finish(throwing error: (any Error)? = nil) {
        let consumer = state.withLock { state -> CheckedContinuation<ByteBuffer?, any Error>? in
            state.finished = true
            state.failure = error
            defer { state.consumer = nil }
            return state.queue.isEmpty ? state.consumer : nil
        }
        if let consumer {
            if let error { consumer.resume(throwing: error) } else { consumer.resume(returning: nil) }
        }
    }

    /// Consumer side: stops the producer at its next `send`, and a waiting `next()`.
    public func cancel() {
        let (wake, consumer) = state.withLock { state -> (Bool, CheckedContinuation<ByteBuffer?, any Error>?) in
            state.cancelled = true
            defer {
                state.producerWaiting = false
                state.consumer = nil
            }
            return (state.producerWaiting, state.consumer)
        }
        if wake { producerWakeup.signal() }
        consumer?.resume(throwing: Cancelled())
    }

    func next() async throws -> ByteBuffer? {
        do {
            let chunk = try await nextChunk()
            if chunk == nil { reachedEnd() }
            return chunk
        } catch {
            reachedEnd()
            throw error
        }
    }

    private func nextChunk() async throws -> ByteBuffer? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Action {
                    case give(ByteBuffer, wakeProducer: Bool)
                    case end((any Error)?)
                    case wait
                }
                let action = state.withLock { state -> Action in
                    if !state.queue.isEmpty {
                        let buffer = state.queue.removeFirst()
                        let wake = state.producerWaiting
                        state.producerWaiting = false
                        return .give(buffer, wakeProducer: wake)
                    }
                    if state.cancelled { return .end(Cancelled()) }
                    if state.finished { return .end(state.failure) }
                    state.consumer = continuation
                    return .wait
                }
                switch action {
                case .give(let buffer, let wake):
                    if wake { producerWakeup.signal() }
                    continuation.resume(returning: buffer)
                case .end(let error):
                    if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: nil) }
                case .wait:
                    break
                }
            }
        } onCancel: {
            cancel()
        }
    }
}

extension ChunkChannel: AsyncSequence {
    public typealias Element = ByteBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: ChunkChannel
        public mutating func next() async throws -> ByteBuffer? { try await channel.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: self) }
}

/// A counting semaphore the blocking producer parks on.
final class DispatchSemaphoreBox: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func wait() { semaphore.wait() }
    func signal() { semaphore.signal() }
}
