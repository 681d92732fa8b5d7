import CapstanStorage
import Foundation
import Logging
import Synchronization

/// Something about deployments that every server replica may need to act on: the replica
/// holding the agent's connection sends it work, replicas following a log wake up.
public enum DeployEvent: Codable, Sendable, Equatable {
    case deploymentCreated(agentID: String, deploymentID: String)
    case deploymentCancelled(agentID: String, deploymentID: String)
    case deploymentChanged(agentID: String, deploymentID: String)
    case logAppended(deploymentID: String)

    public var deploymentID: String {
        switch self {
        case .deploymentCreated(_, let id), .deploymentCancelled(_, let id), .deploymentChanged(_, let id),
            .logAppended(let id):
            id
        }
    }
}

/// Carries deploy events between tasks of this process and, on PostgreSQL, between replicas
/// (LISTEN/NOTIFY): every replica, this one included, receives what any replica publishes.
public final class EventBus: Sendable {
    static let channel = "capstan_deploy_events"

    private let store: CapstanStore
    private let logger: Logger
    private let subscribers = Mutex<[UUID: AsyncStream<DeployEvent>.Continuation]>([:])

    public init(store: CapstanStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func publish(_ event: DeployEvent) async {
        guard store.supportsNotifications else {
            deliver(event)
            return
        }
        do {
            let payload = String(decoding: try JSONEncoder().encode(event), as: UTF8.self)
            try await store.notify(channel: Self.channel, payload: payload)
        } catch {
            logger.error("could not publish a deploy event; delivering it locally only", metadata: ["error": "\(error)"])
            deliver(event)
        }
    }

    /// Events from now on, until the consuming task ends.
    public func subscribe() -> AsyncStream<DeployEvent> {
        let id = UUID()
        let (stream, continuation) = AsyncStream<DeployEvent>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
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
        for continuation in targets { continuation.yield(event) }
    }
}
