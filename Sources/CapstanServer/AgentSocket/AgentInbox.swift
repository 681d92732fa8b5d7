import CapstanModel
import Synchronization

/// The messages an agent sent that its session has not handled yet, oldest first.
///
/// The socket is read apart from the handling, so that a message waiting for the database does not
/// leave the agent's pongs unread (the server would take the agent for dead and drop it). The reader
/// waits only while `capacity` messages or `byteBudget` bytes are queued: an agent that sends faster
/// than the server can record is slowed down, not buffered without end.
final class AgentInbox: Sendable {
    private struct State {
        var queue: [(message: AgentMessage, bytes: Int)] = []
        var head = 0
        var bytes = 0
        /// No more messages will come; the queued ones are still handed out.
        var finished = false
        /// Nothing more is handed out or taken in (the handler failed, or the session was cancelled).
        var closed = false
        var consumer: CheckedContinuation<AgentMessage?, Never>?
        var producer: CheckedContinuation<Bool, Never>?

        var count: Int { queue.count - head }

        var isFull: Bool { count >= AgentInbox.capacity || bytes >= AgentInbox.byteBudget }

        mutating func takeFirst() -> AgentMessage {
            let (message, size) = queue[head]
            head += 1
            bytes -= size
            if head == queue.count {
                queue.removeAll(keepingCapacity: false)
                head = 0
            }
            return message
        }
    }

    static let capacity = 16
    static let byteBudget = 1 << 20

    private let state = Mutex(State())

    /// Queues a message of `bytes` bytes (its frame's size), waiting while the inbox is full. Returns
    /// false when the inbox was closed: the reader should stop.
    func push(_ message: AgentMessage, bytes: Int) async -> Bool {
        let (consumer, queued, full): (CheckedContinuation<AgentMessage?, Never>?, Bool, Bool) = state.withLock {
            state in
            guard !state.closed else { return (nil, false, false) }
            if let waiting = state.consumer {
                state.consumer = nil
                return (waiting, true, false)
            }
            state.queue.append((message, bytes))
            state.bytes += bytes
            return (nil, true, state.isFull)
        }
        consumer?.resume(returning: message)
        guard queued else { return false }
        guard full else { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let verdict: Bool? = state.withLock { state in
                    if state.closed { return false }
                    if !state.isFull { return true }
                    state.producer = continuation
                    return nil
                }
                if let verdict { continuation.resume(returning: verdict) }
            }
        } onCancel: {
            close()
        }
    }

    /// The oldest queued message, waiting for one; nil once the inbox is finished and empty, or closed.
    func next() async -> AgentMessage? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<AgentMessage?, Never>) in
                let (message, producer, done): (AgentMessage?, CheckedContinuation<Bool, Never>?, Bool) =
                    state.withLock { state in
                        if state.closed { return (nil, nil, true) }
                        if state.count > 0 {
                            let message = state.takeFirst()
                            var producer: CheckedContinuation<Bool, Never>?
                            if !state.isFull {
                                producer = state.producer
                                state.producer = nil
                            }
                            return (message, producer, false)
                        }
                        if state.finished { return (nil, nil, true) }
                        state.consumer = continuation
                        return (nil, nil, false)
                    }
                producer?.resume(returning: true)
                if message != nil || done { continuation.resume(returning: message) }
            }
        } onCancel: {
            close()
        }
    }

    /// No more messages will be pushed; those queued are still handed out.
    func finish() {
        let consumer = state.withLock { state in
            state.finished = true
            defer { state.consumer = nil }
            return state.count == 0 ? state.consumer : nil
        }
        consumer?.resume(returning: nil)
    }

    /// Drops what is queued and wakes both sides: the reader stops, the handler gets nil.
    func close() {
        let (consumer, producer) = state.withLock { state in
            state.closed = true
            state.queue.removeAll()
            state.head = 0
            state.bytes = 0
            defer {
                state.consumer = nil
                state.producer = nil
            }
            return (state.consumer, state.producer)
        }
        consumer?.resume(returning: nil)
        producer?.resume(returning: false)
    }
}
