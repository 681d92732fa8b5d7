import CapstanModel
import Synchronization

/// The messages an agent sent that its session has not handled yet, oldest first.
///
/// The socket is read apart from the handling, so that a message waiting for the database does not
/// leave the agent's pongs unread (the server would take the agent for dead and drop it). The reader
/// waits only while `capacity` messages or `byteBudget` bytes are queued: an agent that sends faster
/// than the server can record is slowed down, not buffered without end.
///
/// A handler runs only while messages are queued: the message that finds the inbox idle asks for
/// one, and the handler ends when it has emptied the inbox. An idle agent holds no handler task,
/// and each burst of handling starts on a fresh task stack (a task keeps the memory of its
/// deepest call until it ends, and these calls go deep into the database).
final class AgentInbox: Sendable {
    /// What became of a queued message.
    enum Admission: Equatable {
        /// The inbox was closed: the reader should stop.
        case closed
        /// Queued. `startHandler`: no handler runs, the caller starts one; `full`: wait for room.
        case queued(startHandler: Bool, full: Bool)
    }

    private struct State {
        var queue: [(message: AgentMessage, bytes: Int)] = []
        var head = 0
        var bytes = 0
        /// Nothing more is handed out or taken in (the handler failed, or the session was cancelled).
        var closed = false
        /// A handler is draining the inbox.
        var handling = false
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

    /// Queues a message of `bytes` bytes (its frame's size).
    func enqueue(_ message: AgentMessage, bytes: Int) -> Admission {
        state.withLock { state in
            guard !state.closed else { return .closed }
            state.queue.append((message, bytes))
            state.bytes += bytes
            let start = !state.handling
            state.handling = true
            return .queued(startHandler: start, full: state.isFull)
        }
    }

    /// Waits until the inbox has room again. Returns false when it was closed meanwhile.
    func room() async -> Bool {
        await withTaskCancellationHandler {
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

    /// The handler's next message, or nil when the inbox is empty or closed: the handler then ends,
    /// and the next message queued asks for a new one.
    func nextToHandle() -> AgentMessage? {
        let (message, producer): (AgentMessage?, CheckedContinuation<Bool, Never>?) = state.withLock { state in
            guard !state.closed, state.count > 0 else {
                state.handling = false
                return (nil, nil)
            }
            let message = state.takeFirst()
            var producer: CheckedContinuation<Bool, Never>?
            if !state.isFull {
                producer = state.producer
                state.producer = nil
            }
            return (message, producer)
        }
        producer?.resume(returning: true)
        return message
    }

    /// Drops what is queued and wakes a waiting reader: it stops, and the handler gets nil.
    func close() {
        let producer = state.withLock { state in
            state.closed = true
            state.queue.removeAll()
            state.head = 0
            state.bytes = 0
            defer { state.producer = nil }
            return state.producer
        }
        producer?.resume(returning: false)
    }
}
