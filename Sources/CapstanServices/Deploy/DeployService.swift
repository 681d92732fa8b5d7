import CapstanModel
import CapstanStorage
import Foundation
import Logging
import NixCore
import Synchronization

/// The rules of deployments: who may start them, what a status change means, which agent
/// receives what. Routes for Capstan's API and for the cachix adapter both call this.
public struct DeployService: Sendable {
    /// An agent whose last sign of life is older than this is shown offline.
    static let onlineWindow: TimeInterval = 45

    let store: CapstanStore
    let tokens: TokenService
    let caches: CacheService
    let outbox: any AgentOutbox
    let events: EventBus
    let publicURL: String
    let logger: Logger
    public let audit: AuditLog
    let webhooks: WebhookService
    let logLimits: LogLimits
    let localActionRules = LocalActionRules()
    let followers = LogFollowers()
    /// Agents' reports take turns: all but two of the database's pooled connections, so that an
    /// activation or a page never waits behind a whole fleet reporting at once.
    public let reportTurns: AsyncLimiter

    public init(
        store: CapstanStore, tokens: TokenService, caches: CacheService, outbox: any AgentOutbox, events: EventBus,
        publicURL: String, logger: Logger, webhooks: WebhookService? = nil, logLimits: LogLimits = LogLimits()
    ) {
        self.logLimits = logLimits
        self.store = store
        self.tokens = tokens
        self.caches = caches
        self.outbox = outbox
        self.events = events
        self.publicURL = publicURL
        self.logger = logger
        audit = AuditLog(store: store, logger: logger)
        self.webhooks = webhooks ?? WebhookService(store: store, logger: logger)
        reportTurns = AsyncLimiter(limit: max(1, store.database.pooledConnections - 2))
    }

    /// A deployment reached a final status here (this replica made the change): counted, and told to
    /// the workspace's webhooks.
    func finished(_ record: DeploymentRecord) async {
        await finished([record])
    }

    /// `finished(record)` with the workspace's webhooks already read (on the connection that recorded it).
    /// A deployment is described for them only when there are some: most workspaces have none.
    func finished(_ record: DeploymentRecord, hooks: [WebhookRecord]) async {
        ServerMetrics.deploymentFinished(record)
        await webhooks.deploymentFinished(hooks: hooks) { try await info(record) }
    }

    /// `finished` of many deployments of one workspace (those an activation superseded): the
    /// webhooks are read once for all of them.
    func finished(_ records: [DeploymentRecord]) async {
        guard let workspaceID = records.first?.workspaceID else { return }
        let hooks = await webhooks.hooks(workspaceID: workspaceID)
        for record in records { await finished(record, hooks: hooks) }
    }

    // MARK: Agents

    public func createAgent(_ request: CreateAgentRequest, by principal: Principal) async throws -> CreatedAgent {
        try AccessPolicy.require(.manageAgents, by: principal)
        do {
            try ResourceName.validate(request.name, what: "agent")
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        var cacheID: String?
        if let cacheName = request.cache {
            guard let cache = try await store.cache(named: cacheName, workspaceID: principal.workspaceID) else {
                throw ServiceError.notFound("cache '\(cacheName)' does not exist in this workspace")
            }
            cacheID = cache.id
        }
        let record = AgentRecord(
            id: UUID().uuidString.lowercased(), workspaceID: principal.workspaceID, name: request.name,
            cacheID: cacheID, system: nil, version: nil, currentStorePath: nil, lastSeen: nil, createdAt: Date())
        do {
            try await store.insertAgent(record)
        } catch let error as StorageError {
            if case .duplicate = error {
                throw ServiceError.conflict("an agent named '\(request.name)' already exists")
            }
            throw error
        }
        let token = try await tokens.issue(
            kind: .agent, workspaceID: principal.workspaceID, cacheID: nil, agentID: record.id,
            label: "agent \(request.name)")
        logger.info("agent created", metadata: ["agent": "\(request.name)"])
        await audit.record(.agentCreated, by: principal, target: request.name)
        return CreatedAgent(agent: try await info(record), token: token.token)
    }

    public func agents(by principal: Principal) async throws -> [AgentInfo] {
        try requireReader(principal)
        var result: [AgentInfo] = []
        for agent in try await store.agents(workspaceID: principal.workspaceID) { result.append(try await info(agent)) }
        return result
    }

    func info(_ agent: AgentRecord) async throws -> AgentInfo {
        let latest = try await store.deployments(
            workspaceID: agent.workspaceID, agentID: agent.id, status: nil, limit: 1
        )
        .first
        return AgentInfo(
            id: agent.id, name: agent.name, online: await isOnline(agent), lastSeen: agent.lastSeen,
            system: agent.system, version: agent.version, currentStorePath: agent.currentStorePath,
            currentDeployment: latest?.id, currentStatus: latest?.status, needsReboot: agent.needsReboot,
            createdAt: agent.createdAt)
    }

    /// Connected here, or seen recently by another replica (which refreshes last-seen while connected).
    func isOnline(_ agent: AgentRecord) async -> Bool {
        if await outbox.isConnected(agent.id) { return true }
        guard let lastSeen = agent.lastSeen, Date().timeIntervalSince(lastSeen) < Self.onlineWindow else {
            return false
        }
        if let gone = await outbox.lastDisconnect(agent.id), gone >= lastSeen { return false }
        return true
    }

    // MARK: Activation

    /// One deployment per agent of the deploy.json, created together or not at all.
    public func activate(_ spec: DeploySpec, agentFilter: Set<String>? = nil, by principal: Principal) async throws
        -> ActivateResponse
    {
        try AccessPolicy.require(.activate, by: principal)
        do {
            try spec.validate()
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        var requests: [DeploymentRequest] = []
        var names: [String: String] = [:]
        let wanted = spec.agents.sorted(by: { $0.key < $1.key }).filter { agentFilter?.contains($0.key) ?? true }
        let agents = try await store.agents(workspaceID: principal.workspaceID, names: wanted.map(\.key))
        for (name, path) in wanted {
            guard let agent = agents[name] else {
                throw ServiceError.badRequest(
                    "deploy.json: agents.\(name): no agent named '\(name)' in this workspace; "
                        + "add it with `capstan agent create \(name)` (nothing was deployed)")
            }
            names[agent.id] = name
            requests.append(
                DeploymentRequest(
                    agentID: agent.id, storePath: path, rollbackScript: spec.rollbackScript,
                    activation: spec.activation(for: name)))
        }
        guard !requests.isEmpty else {
            throw ServiceError.badRequest("no agent of deploy.json matches the --agent filter")
        }
        let rollout = spec.rollout.map { rollout in
            rolloutPlan(
                rollout, names: wanted.map(\.key), agentIDs: Dictionary(uniqueKeysWithValues: names.map { ($1, $0) }))
        }
        let activationID = UUID().uuidString.lowercased()
        let batch = try await store.createDeployments(
            workspaceID: principal.workspaceID, activationID: activationID, createdBy: principal.label,
            requests: requests, at: Date(), rollout: rollout?.0, audit: audit.event(.activate, by: principal))
        await finished(batch.superseded)
        await events.publish(
            batch.superseded.map { .deploymentCancelled(agentID: $0.agentID, deploymentID: $0.id) }
                + batch.created.map { .deploymentCreated(agentID: $0.agentID, deploymentID: $0.id) })
        var response: [String: ActivateResponse.Created] = [:]
        let by = principal.label ?? principal.tokenID
        for deployment in batch.created {
            let name = names[deployment.agentID] ?? deployment.agentID
            response[name] = .init(id: deployment.id, index: deployment.index, url: url(of: deployment))
            logger.debug(
                "deployment created",
                metadata: [
                    "agent": "\(name)", "deployment": "\(deployment.id)", "index": "\(deployment.index)",
                    "storePath": "\(deployment.storePath)", "by": "\(by)",
                ])
        }
        // One line per activation at info: a deploy.json of 10,000 agents is one event, not 10,000.
        logger.info(
            "deployments created",
            metadata: [
                "activation": "\(activationID)", "deployments": "\(batch.created.count)",
                "superseded": "\(batch.superseded.count)", "by": "\(by)",
                "agents": "\(Self.summary(of: batch.created.map { names[$0.agentID] ?? $0.agentID }))",
            ])
        guard let (plan, waves) = rollout else { return ActivateResponse(agents: response) }
        logger.info("rollout created", metadata: ["rollout": "\(plan.id)", "waves": "\(waves)"])
        return ActivateResponse(
            agents: response, rollout: .init(id: plan.id, url: rolloutURL(plan.id), waves: waves))
    }

    /// Up to five names, then how many more: what a log line can carry of a long list.
    static func summary(of names: [String]) -> String {
        let shown = names.sorted().prefix(5).joined(separator: ", ")
        return names.count > 5 ? "\(shown) and \(names.count - 5) more" : shown
    }

    public func url(of deployment: DeploymentRecord) -> String { "\(publicURL)/deployments/\(deployment.id)" }

    // MARK: Reading

    public func deployment(id: String, by principal: Principal) async throws -> DeploymentInfo {
        try requireReader(principal)
        var info = try await info(try record(id: id, workspaceID: principal.workspaceID))
        if let membership = try await store.rolloutMembership(deploymentID: id) {
            info.rollout = membership.rolloutID
            info.wave = membership.wave
        }
        return info
    }

    public func deployments(
        agentName: String?, status: DeploymentStatus?, limit: Int, by principal: Principal
    ) async throws -> [DeploymentInfo] {
        try requireReader(principal)
        var agentID: String?
        if let agentName {
            guard let agent = try await store.agent(workspaceID: principal.workspaceID, name: agentName) else {
                throw ServiceError.notFound("no agent named '\(agentName)' in this workspace")
            }
            agentID = agent.id
        }
        var result: [DeploymentInfo] = []
        for record in try await store.deployments(
            workspaceID: principal.workspaceID, agentID: agentID, status: status, limit: max(1, min(limit, 1000)))
        {
            result.append(try await info(record))
        }
        return result
    }

    func record(id: String, workspaceID: String) async throws -> DeploymentRecord {
        guard let record = try await store.deployment(id: id), record.workspaceID == workspaceID else {
            throw ServiceError.notFound("deployment \(id) does not exist in this workspace")
        }
        return record
    }

    func info(_ record: DeploymentRecord) async throws -> DeploymentInfo {
        let agent = try await store.agent(id: record.agentID)
        return DeploymentInfo(
            id: record.id, agent: agent?.name ?? record.agentID, index: record.index, storePath: record.storePath,
            rollbackScript: agent?.system.flatMap { record.rollbackScript?[$0] }, status: record.status,
            reason: record.reason, rolledBack: record.rolledBack, closureSize: record.closureSize,
            createdOn: record.createdAt, startedOn: record.startedAt, finishedOn: record.finishedAt,
            createdBy: record.createdBy, url: url(of: record),
            checks: record.checkResults)
    }

    /// One page of a deployment's log: the `limit` lines after line `after`, or with `after` nil the
    /// last `limit` lines; with the number of lines the log holds. Pages keep a long log from ever
    /// being loaded whole.
    public func logPage(id: String, after: Int?, limit: Int = 1000, by principal: Principal) async throws -> LogPage {
        try requireReader(principal)
        _ = try await record(id: id, workspaceID: principal.workspaceID)
        let total = try await store.logLineCount(deploymentID: id)
        let limit = max(1, min(limit, 1000))
        let start = max(0, min(after ?? (total - limit), total))
        let lines = try await store.logLines(deploymentID: id, after: start, limit: limit)
        return LogPage(after: start, lines: lines.map(\.line), total: total)
    }

    /// Everything logged so far, then new lines as they come, then the final deployment.
    public func followLog(id: String, after: Int = 0, by principal: Principal) async throws -> AsyncThrowingStream<
        LogStreamItem, any Error
    > {
        try requireReader(principal)
        let first = try await record(id: id, workspaceID: principal.workspaceID)
        // Subscribe before the first read so that nothing logged in between is missed.
        let subscription = events.subscribe()
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        // Revoking the follower's token, or its session expiring, ends the stream.
        let credentialEnded = CredentialEnd()
        let listener = Task {
            for await event in subscription {
                if event == .tokenRevoked(tokenID: principal.tokenID) {
                    credentialEnded.end()
                    wake.yield()
                } else if event.deploymentID == id {
                    wake.yield()
                }
            }
        }
        // A lost notification only delays the follower until the next tick.
        let ticker = Task {
            var expiry = principal.expiresAt
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(min(5, max(0.05, expiry?.timeIntervalSinceNow ?? 5))))
                if let end = expiry, end <= Date() {
                    credentialEnded.end()
                    expiry = nil
                }
                wake.yield()
            }
        }
        let follower = followers.add(wake)
        return AsyncThrowingStream { continuation in
            let task = Task {
                var seq = max(0, after)
                var current = first
                var wakeup = wakeups.makeAsyncIterator()
                do {
                    while !Task.isCancelled {
                        let lines = try await store.logLines(deploymentID: id, after: seq, limit: 1000)
                        for stored in lines { continuation.yield(LogStreamItem(line: stored.line)) }
                        seq = lines.last?.seq ?? seq
                        if lines.count == 1000 { continue }
                        if current.status.isFinal {
                            continuation.yield(LogStreamItem(end: try await info(current)))
                            break
                        }
                        if followers.haveEnded { break }
                        guard await wakeup.next() != nil else { break }
                        if credentialEnded.hasEnded {
                            throw ServiceError.unauthorized("the credential following this log was revoked or expired")
                        }
                        current = try await store.deployment(id: id) ?? current
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
                listener.cancel()
                ticker.cancel()
                followers.remove(follower)
            }
            continuation.onTermination = { _ in
                task.cancel()
                listener.cancel()
                ticker.cancel()
                followers.remove(follower)
            }
        }
    }

    /// Graceful shutdown: every log followed here ends after the lines logged so far, without the final
    /// item (a client sees the server go away, not the deployment end).
    public func endLogFollowers() {
        followers.end()
    }

    // MARK: Actions

    public func cancel(id: String, by principal: Principal) async throws -> DeploymentInfo {
        try requireActor(principal)
        let record = try await record(id: id, workspaceID: principal.workspaceID)
        if record.status == .inProgress { return try await cancelRunning(record, by: principal) }
        guard record.status == .pending else {
            throw ServiceError.conflict(
                "deployment \(id) is \(record.status.rawValue); only a Pending or InProgress deployment can be cancelled"
            )
        }
        guard
            let cancelled = try await store.transitionDeployment(
                id: id, from: [.pending], to: .cancelled,
                reason: "cancelled by \(principal.label ?? principal.kind.rawValue)",
                rolledBack: nil, at: Date())
        else {
            // Its agent started it meanwhile: stop it as a running one.
            let now = try await self.record(id: id, workspaceID: principal.workspaceID)
            if now.status == .inProgress { return try await cancelRunning(now, by: principal) }
            throw ServiceError.conflict(
                "deployment \(id) is \(now.status.rawValue) now; only a Pending or InProgress deployment can be cancelled"
            )
        }
        await finished(cancelled)
        await events.publish(.deploymentCancelled(agentID: cancelled.agentID, deploymentID: id))
        logger.info(
            "deployment cancelled", metadata: ["deployment": "\(id)", "by": "\(principal.label ?? principal.tokenID)"])
        await audit.record(.cancel, by: principal, target: id)
        return try await info(cancelled)
    }

    /// A running deployment stays InProgress until its agent, told to cancel it, reports it Cancelled
    /// (rolled back if it had switched) — or finished, when the cancel came after its commit.
    private func cancelRunning(_ record: DeploymentRecord, by principal: Principal) async throws -> DeploymentInfo {
        let by = principal.label ?? principal.kind.rawValue
        try await appendLines(
            record.id, ["Cancel requested by \(by): the agent stops the deployment, and rolls back if it has switched"])
        await events.publish(.deploymentCancelled(agentID: record.agentID, deploymentID: record.id))
        logger.info("running deployment cancelled", metadata: ["deployment": "\(record.id)", "by": "\(by)"])
        await audit.record(.cancel, by: principal, target: record.id, detail: "while InProgress")
        return try await info(record)
    }

    /// A finished deployment again: same agent, same store path, a new deployment.
    public func retry(id: String, by principal: Principal) async throws -> DeploymentInfo {
        try requireActor(principal)
        let record = try await record(id: id, workspaceID: principal.workspaceID)
        guard record.status.isFinal else {
            throw ServiceError.conflict(
                "deployment \(id) is still \(record.status.rawValue); retry it once it has finished")
        }
        let created = try await redeploy(
            record.agentID, storePath: record.storePath, rollbackScript: record.rollbackScript,
            activation: record.activation, by: principal)
        await audit.record(.retry, by: principal, target: created.id, detail: "retry of \(id)")
        return created
    }

    /// Deploys the agent's previous successful configuration again.
    public func rollback(agentName: String, by principal: Principal) async throws -> DeploymentInfo {
        try requireActor(principal)
        let (agent, previous) = try await rollbackTarget(agentName: agentName, workspaceID: principal.workspaceID)
        let created = try await redeploy(
            agent.id, storePath: previous.storePath, rollbackScript: previous.rollbackScript,
            activation: previous.activation, by: principal)
        await audit.record(
            .rollback, by: principal, target: agentName, detail: "deployment \(created.id) back to #\(previous.index)")
        return created
    }

    /// The agent and the succeeded deployment a rollback would deploy again: the newest one before
    /// the current that ran another store path.
    func rollbackTarget(agentName: String, workspaceID: String) async throws -> (AgentRecord, DeploymentRecord) {
        guard let agent = try await store.agent(workspaceID: workspaceID, name: agentName) else {
            throw ServiceError.notFound("no agent named '\(agentName)' in this workspace")
        }
        guard let current = try await store.lastSucceededDeployment(agentID: agent.id, before: nil) else {
            throw ServiceError.conflict("agent '\(agentName)' has no successful deployment to roll back from")
        }
        var candidate = try await store.lastSucceededDeployment(agentID: agent.id, before: current.index)
        while let found = candidate, found.storePath == current.storePath {
            candidate = try await store.lastSucceededDeployment(agentID: agent.id, before: found.index)
        }
        guard let previous = candidate else {
            throw ServiceError.conflict(
                "agent '\(agentName)' has no earlier successful deployment than #\(current.index) to roll back to")
        }
        return (agent, previous)
    }

    private func redeploy(
        _ agentID: String, storePath: StorePath, rollbackScript: [String: StorePath]?, activation: ActivationSettings?,
        by principal: Principal
    ) async throws -> DeploymentInfo {
        let request = DeploymentRequest(
            agentID: agentID, storePath: storePath, rollbackScript: rollbackScript, activation: activation)
        let batch = try await store.createDeployments(
            workspaceID: principal.workspaceID, activationID: UUID().uuidString.lowercased(),
            createdBy: principal.label,
            requests: [request], at: Date())
        await finished(batch.superseded)
        await events.publish(batch.superseded.map { .deploymentCancelled(agentID: $0.agentID, deploymentID: $0.id) })
        guard let created = batch.created.first else {
            throw ServiceError(.unavailable, "the deployment was not created")
        }
        await events.publish(.deploymentCreated(agentID: agentID, deploymentID: created.id))
        return try await info(created)
    }

    private func requireReader(_ principal: Principal) throws {
        try AccessPolicy.require(.readDeployments, by: principal)
    }

    private func requireActor(_ principal: Principal) throws {
        try AccessPolicy.require(.changeDeployments, by: principal)
    }
}

/// A page of a deployment's log: lines `after + 1 …`, of `total`.
public struct LogPage: Sendable {
    public var after: Int
    public var lines: [LogLine]
    public var total: Int
}

/// Set once a follower's credential stops being valid.
final class CredentialEnd: Sendable {
    private let ended = Mutex(false)
    func end() { ended.withLock { $0 = true } }
    var hasEnded: Bool { ended.withLock { $0 } }
}
