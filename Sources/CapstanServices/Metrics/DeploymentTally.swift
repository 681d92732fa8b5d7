import CapstanModel
import CapstanStorage
import Logging

/// How many deployments are in each status, kept in memory so that a scrape of `/metrics` reads no
/// database. Counted once at start, then moved along by the deploy events every replica receives
/// (one read of the deployment an event names), so each replica's gauge covers all of them.
public actor DeploymentTally {
    private let store: CapstanStore
    private let events: EventBus
    private let logger: Logger
    private var counts: [DeploymentStatus: Int] = [:]
    /// Deployments not yet final, and the status last seen.
    private var open: [String: DeploymentStatus] = [:]

    public init(store: CapstanStore, events: EventBus, logger: Logger) {
        self.store = store
        self.events = events
        self.logger = logger
    }

    public var snapshot: [DeploymentStatus: Int] { counts }

    /// Counts, then follows events until cancelled.
    public func run() async {
        // Subscribed before counting, so no change falls between the two.
        let batches = events.batches()
        while !Task.isCancelled {
            do {
                try await load()
                break
            } catch {
                logger.error("could not count deployments for metrics; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(5))
            }
        }
        for await batch in batches {
            await apply(batch)
        }
    }

    private func load() async throws {
        counts = try await store.deploymentCounts(workspaceID: nil)
        open = Dictionary(try await store.openDeployments().map { ($0.id, $0.status) }, uniquingKeysWith: { $1 })
        ServerMetrics.deployments(counts)
    }

    func apply(_ batch: [DeployEvent]) async {
        var changed: Set<String> = []
        for event in batch {
            switch event {
            case .deploymentCreated(_, let id):
                if open[id] == nil { move(id, from: nil, to: .pending) }
            case .deploymentChanged(_, let id), .deploymentCancelled(_, let id):
                changed.insert(id)
            case .logAppended, .tokenRevoked, .cacheChanged, .rolloutChanged:
                continue
            }
        }
        // A read gives the status now, which every event of the batch led to; one query per 500
        // (an activation superseding thousands of deployments publishes one event for each).
        guard !changed.isEmpty else { return ServerMetrics.deployments(counts) }
        do {
            for (id, record) in try await store.deployments(ids: Array(changed)) {
                let previous = open[id]
                // A final deployment not followed here was counted when the tally was loaded.
                guard previous != nil || !record.status.isFinal, previous != record.status else { continue }
                move(id, from: previous, to: record.status)
            }
        } catch {
            logger.warning(
                "could not read deployments for metrics",
                metadata: ["deployments": "\(changed.count)", "error": "\(error)"])
        }
        ServerMetrics.deployments(counts)
    }

    private func move(_ id: String, from previous: DeploymentStatus?, to status: DeploymentStatus) {
        if let previous { counts[previous, default: 0] -= 1 }
        counts[status, default: 0] += 1
        open[id] = status.isFinal ? nil : status
    }
}
