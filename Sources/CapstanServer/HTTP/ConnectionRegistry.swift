import HummingbirdCore
import Logging
import NIOCore
import Synchronization

/// Every client connection of the server, and the cap on how many it holds. A connection is idle
/// until its request's headers have arrived and again between requests; a WebSocket (an agent)
/// stays busy. When a new connection takes the server over its cap, the connection idle the
/// longest is closed: clients that send nothing cannot keep others out, and an answering server
/// never waits for a descriptor.
final class ConnectionRegistry: Sendable {
    struct Entry {
        let channel: any Channel
        /// When it last became idle (a sequence number, smaller is older); nil while busy.
        var idleSince: UInt64?
        /// Chosen to make room and being closed: no longer counted, nor chosen again.
        var evicting = false
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        var idleCount = 0
        var evictingCount = 0
        var clock: UInt64 = 0
        /// Connections in the order they became idle, oldest first from `idleHead`; an item is stale
        /// once its connection's `idleSince` differs (busy again, idle again later, or gone). Finding
        /// the longest idle is then amortised constant time, even with tens of thousands connected.
        var idleOrder: [(since: UInt64, key: ObjectIdentifier)] = []
        var idleHead = 0

        var counted: Int { entries.count - evictingCount }

        mutating func becameIdle(_ key: ObjectIdentifier) {
            clock += 1
            entries[key]?.idleSince = clock
            idleCount += 1
            idleOrder.append((clock, key))
            // Stale items are dropped now and then, so the order stays proportional to the connections.
            if idleOrder.count - idleHead > 2 * entries.count + 1024 {
                idleOrder = idleOrder[idleHead...].filter { entries[$0.key]?.idleSince == $0.since }
                idleHead = 0
            }
        }

        /// The connection idle the longest, other than `newest`; nil when none is idle.
        mutating func longestIdle(besides newest: ObjectIdentifier) -> ObjectIdentifier? {
            while idleHead < idleOrder.count {
                let item = idleOrder[idleHead]
                guard entries[item.key]?.idleSince == item.since else {
                    idleHead += 1
                    continue
                }
                // The newest is the last in the order: reaching it, nothing older is idle.
                if item.key == newest { return nil }
                idleHead += 1
                return item.key
            }
            return nil
        }
    }

    let capacity: Int
    private let state = Mutex(State())
    private let logger: Logger

    init(capacity: Int, logger: Logger) {
        self.capacity = capacity
        self.logger = logger
    }

    var count: Int { state.withLock { $0.counted } }

    /// Accepting one more connection either fits or can make room.
    var canAccept: Bool { state.withLock { $0.counted < capacity || $0.idleCount > 0 } }

    /// A new connection, idle until its headers arrive; over the cap, the connection idle the
    /// longest is told to close (`ConnectionGuard` does it, on its own event loop).
    func opened(_ channel: any Channel) {
        let evicted: (any Channel)? = state.withLock { state in
            let key = ObjectIdentifier(channel)
            state.entries[key] = Entry(channel: channel, idleSince: nil)
            state.becameIdle(key)
            guard state.counted > capacity, let oldest = state.longestIdle(besides: key) else { return nil }
            state.entries[oldest]?.idleSince = nil
            state.entries[oldest]?.evicting = true
            state.idleCount -= 1
            state.evictingCount += 1
            return state.entries[oldest]?.channel
        }
        guard let evicted else { return }
        logger.debug(
            "over the connection cap; closing the connection idle the longest", metadata: ["cap": "\(capacity)"])
        evicted.pipeline.fireUserInboundEventTriggered(ConnectionGuard.Close.evicted)
    }

    func closed(_ channel: any Channel) {
        state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: ObjectIdentifier(channel)) else { return }
            if entry.idleSince != nil { state.idleCount -= 1 }
            if entry.evicting { state.evictingCount -= 1 }
        }
    }

    /// Its request has begun: not closed to make room, even if chosen a moment ago.
    func busy(_ channel: any Channel) {
        state.withLock { state in
            let key = ObjectIdentifier(channel)
            guard let entry = state.entries[key] else { return }
            if entry.idleSince != nil { state.idleCount -= 1 }
            if entry.evicting { state.evictingCount -= 1 }
            state.entries[key]?.idleSince = nil
            state.entries[key]?.evicting = false
        }
    }

    func idle(_ channel: any Channel) {
        state.withLock { state in
            let key = ObjectIdentifier(channel)
            guard let entry = state.entries[key], entry.idleSince == nil, !entry.evicting else { return }
            state.becameIdle(key)
        }
    }

    /// Whether a connection chosen to make room is still to be closed (it did not become busy meanwhile).
    func isEvicting(_ channel: any Channel) -> Bool {
        state.withLock { $0.entries[ObjectIdentifier(channel)]?.evicting ?? false }
    }

    /// Every connection, for closing them all at once.
    var channels: [any Channel] { state.withLock { $0.entries.values.map(\.channel) } }
}

/// Tells Hummingbird's accept loop to pause while the registry is full of busy connections.
struct RegistryAcceptance: AvailableConnectionsDelegate {
    let registry: ConnectionRegistry

    mutating func connectionOpened() {}
    mutating func connectionClosed() {}
    func isAcceptingNewConnections() -> Bool { registry.canAccept }
}
