import CapstanStorage
import Foundation
import Logging
import Synchronization

/// Something about deployments that every server replica may need to act on: the replica
/// holding the agent's connection sends it work, replicas following a log wake up. Caches use the
/// same bus to tell replicas what they must forget.
public enum DeployEvent: Codable, Sendable, Equatable {
    case deploymentCreated(agentID: String, deploymentID: String)
    case deploymentCancelled(agentID: String, deploymentID: String)
    case deploymentChanged(agentID: String, deploymentID: String)
    case logAppended(deploymentID: String)
    /// A token was revoked: every replica ends what it holds open for it.
    case tokenRevoked(tokenID: String)
    /// Paths of a cache were removed or its settings changed: replicas drop what they remember of it.
    case cacheChanged(cacheID: String)
    /// A rollout moved on, paused, resumed or ended.
    case rolloutChanged(rolloutID: String)

    /// The deployment the event is about; nil for token and cache events.
    public var deploymentID: String? {
        switch self {
        case .deploymentCreated(_, let id), .deploymentCancelled(_, let id), .deploymentChanged(_, let id),
            .logAppended(let id):
            id
        case .tokenRevoked, .cacheChanged, .rolloutChanged: nil
        }
    }
}

/// Carries deploy events between tasks of this process and, on PostgreSQL, between replicas
/// (LISTEN/NOTIFY): every replica, this one included, receives what any replica publishes.
public final class EventBus: Sendable {
    static let channel = "capstan_deploy_events"

    private let store: CapstanStore
    private let logger: Logger
    private let subscribers = Mutex<[UUID: @Sendable (DeployEvent) -> Void]>([:])

    public init(store: CapstanStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func publish(_ event: DeployEvent) async {
        await publish([event])
    }

    /// Publishes events in order; on PostgreSQL with one statement, however many there are, sent on
    /// `connection` when one is given instead of a pooled one (outside a transaction: it would go out
    /// only when that commits).
    public func publish(_ events: [DeployEvent], on connection: StoreConnection? = nil) async {
        guard !events.isEmpty else { return }
        guard store.supportsNotifications else {
            for event in events { deliver(event) }
            return
        }
        do {
            let encoder = JSONEncoder()
            let payloads = try events.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
            try await store.notify(channel: Self.channel, payloads: payloads, on: connection)
        } catch {
            logger.error(
                "could not publish deploy events; delivering them locally only", metadata: ["error": "\(error)"])
            for event in events { deliver(event) }
        }
    }

    /// Events from now on, until the consuming task ends. A slow consumer may miss events (the newest
    /// 1024 are kept): for followers that re-read the database anyway.
    public func subscribe() -> AsyncStream<DeployEvent> {
        let (stream, continuation) = AsyncStream<DeployEvent>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        let id = register { continuation.yield($0) }
        continuation.onTermination = { [weak self] _ in self?.unregister(id) }
        return stream
    }

    /// Events from now on, in order and none dropped, as batches: everything that arrived while the
    /// consumer was busy with the previous batch. For the dispatcher, which must see every event and
    /// answers a batch with a few queries instead of a few per event.
    public func batches() -> DeployEventBatches {
        let pending = DeployEventBatches.Pending()
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = register { event in
            pending.append(event)
            wake.yield()
        }
        wake.onTermination = { [weak self] _ in self?.unregister(id) }
        return DeployEventBatches(wakeups: wakeups, pending: pending)
    }

    private func register(_ subscriber: @escaping @Sendable (DeployEvent) -> Void) -> UUID {
        let id = UUID()
        subscribers.withLock { $0[id] = subscriber }
        return id
    }

    private func unregister(_ id: UUID) {
        _ = subscribers.withLock { $0.removeValue(forKey: id) }
    }

    /// Relays notifications from the database to local subscribers; runs for the server's life.
    public func run() async {
        guard store.supportsNotifications else { return }
        let decoder = JSONDecoder()
        for attempt in 0... {
            do {
                for try await payload in store.listen(channel: Self.channel) {
                    guard let event = try? decoder.decode(DeployEvent.self, from: Data(payload.utf8)) else {
                        logger.warning("ignoring a malformed deploy event", metadata: ["payload": "\(payload)"])
                        continue
                    }
                    deliver(event)
                }
                return
            } catch {
                if Task.isCancelled { return }
                logger.error("listening for deploy events failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(min(30, 1 << min(attempt, 5))))
            }
        }
    }

    private func deliver(_ event: DeployEvent) {
        let targets = subscribers.withLock { Array($0.values) }
        for subscriber in targets { subscriber(event) }
    }
}

/// See `EventBus.batches()`. Unbounded: the dispatcher drains it as fast as it can send.
public struct DeployEventBatches: AsyncSequence, Sendable {
    public typealias Element = [DeployEvent]
    public typealias Failure = Never

    final class Pending: Sendable {
        private let events = Mutex<[DeployEvent]>([])

        func append(_ event: DeployEvent) { events.withLock { $0.append(event) } }

        func takeAll() -> [DeployEvent] {
            events.withLock { events in
                defer { events.removeAll(keepingCapacity: false) }
                return events
            }
        }
    }

    let wakeups: AsyncStream<Void>
    let pending: Pending

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(wakeups: wakeups.makeAsyncIterator(), pending: pending)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = [DeployEvent]
        public typealias Failure = Never

        var wakeups: AsyncStream<Void>.AsyncIterator
        let pending: Pending

        /// The next non-empty batch, oldest event first; nil once the subscription ends.
        public mutating func next() async -> [DeployEvent]? {
            // Events are appended before the wake-up, so a wake-up finds its event or a later one
            // that already took it finds none: then wait again.
            while await wakeups.next() != nil {
                let batch = pending.takeAll()
                if !batch.isEmpty { return batch }
            }
            return nil
        }
    }
}
