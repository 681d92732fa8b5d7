import CapstanModel
import CapstanStorage
import Foundation
import NixCore

/// What agents report, and what they are told: the rules behind the agent channel (and the
/// cachix adapter's), independent of the socket that carries them.
extension DeployService {
    static let finalSuccessLine = "Successfully activated the deployment."
    static let finalFailureLine = "Failed to activate the deployment."
    static let finalCancelLine = "Cancelled the deployment."
    /// What the server presumes when a reconnected agent no longer mentions a deployment; the
    /// agent's own report, should it still come, replaces the presumption.
    static let orphanReason = "the agent restarted and no longer runs this deployment (its process was killed)"

    /// Checks an agent's hello against its token and records what it says about itself.
    public func agentConnected(_ principal: Principal, hello: AgentHello) async throws -> AgentRecord {
        let agent = try await agent(authenticatedAs: principal)
        guard hello.name == agent.name else {
            throw ServiceError.forbidden(
                "this token belongs to agent '\(agent.name)', but the agent introduced itself as '\(hello.name)'")
        }
        // A current path that was not a store path at all was dropped as the hello was read.
        try await store.recordAgentSeen(
            id: agent.id, system: hello.system, version: hello.version, currentStorePath: hello.currentStorePath,
            at: Date())
        if hello.needsReboot != agent.needsReboot {
            try await store.setAgentNeedsReboot(id: agent.id, needsReboot: hello.needsReboot)
        }
        logger.info(
            "agent connected",
            metadata: ["agent": "\(agent.name)", "version": "\(hello.version)", "system": "\(hello.system)"])
        return try await store.agent(id: agent.id) ?? agent
    }

    /// What an agent says about its machine between deployments. Only a change is written (and
    /// logged): an agent that repeats itself costs a read, not a write.
    public func agentStatus(_ agent: AgentRecord, status: AgentStatus) async throws {
        guard try await store.agent(id: agent.id)?.needsReboot != status.needsReboot else { return }
        try await store.setAgentNeedsReboot(id: agent.id, needsReboot: status.needsReboot)
        logger.info(
            "agent status",
            metadata: ["agent": "\(agent.name)", "needsReboot": "\(status.needsReboot.map(String.init) ?? "unknown")"])
    }

    /// What someone did on the agent's machine without the server: recorded in the audit log when the
    /// server learns of it (the detail says when it was done there). The agent sends each report until
    /// it is acknowledged, so the same id may arrive twice; the audit log keeps the first. The machine
    /// may be hostile: a malformed report is dropped, its reason made one printable line, and at most
    /// `LocalActionRules.maxReportsPerHour` reports an hour are recorded per agent.
    public func agentLocalAction(_ agent: AgentRecord, report received: LocalActionReport, now: Date = Date())
        async throws
    {
        let action = AuditAction.localAction.rawValue
        let report: LocalActionReport
        do {
            report = try localActionRules.accept(received)
        } catch {
            logger.warning(
                "agent's local action report dropped", metadata: ["agent": "\(agent.name)", "why": "\(error)"])
            return
        }
        guard
            try await !store.hasAuditEvent(
                workspaceID: agent.workspaceID, action: action, target: agent.name, detailPrefix: report.id + ": ")
        else { return }
        let recent = try await store.auditEventCount(
            workspaceID: agent.workspaceID, action: action, target: agent.name, since: now.addingTimeInterval(-3600))
        guard recent < localActionRules.maxReportsPerHour else {
            logger.warning(
                "agent's local action report dropped",
                metadata: [
                    "agent": "\(agent.name)",
                    "why": "more than \(localActionRules.maxReportsPerHour) reports in the last hour",
                ])
            return
        }
        await audit.record(
            .localAction, workspaceID: agent.workspaceID, actor: "on the machine of agent \(agent.name)",
            actorTokenID: nil, target: agent.name, detail: "\(report.id): \(report.summary)", at: now)
        logger.notice(
            "agent reported a local action",
            metadata: [
                "agent": "\(agent.name)", "action": "\(report.action.rawValue)", "storePath": "\(report.storePath)",
            ])
    }

    /// The cache an agent substitutes from: its own, else the workspace's first.
    public func cacheFor(_ agent: AgentRecord) async throws -> AgentCache? {
        guard let cache = try await cacheRecord(for: agent) else { return nil }
        return AgentCache(
            name: cache.name, url: caches.substituterURL(cache), publicKey: cache.publicKey, isPublic: cache.isPublic)
    }

    func cacheRecord(for agent: AgentRecord) async throws -> CacheRecord? {
        var cache: CacheRecord?
        if let cacheID = agent.cacheID { cache = try await store.cache(id: cacheID) }
        if cache == nil {
            cache = try await store.caches(workspaceID: agent.workspaceID).min { $0.createdAt < $1.createdAt }
        }
        return cache
    }

    /// A stored deployment as an order for an agent of `system`.
    static func order(_ deployment: DeploymentRecord, system: String?) -> DeploymentOrder {
        DeploymentOrder(
            id: deployment.id, index: deployment.index, storePath: deployment.storePath,
            rollbackScript: system.flatMap { deployment.rollbackScript?[$0] },
            activation: deployment.activation)
    }

    /// The newest pending deployment of each of these agents, as an order for it, with two queries
    /// (per 500 agents), keyed by agent ID; agents
    /// with nothing pending, or gone, are absent.
    public func pendingOrders(forAgentIDs agentIDs: [String]) async throws -> [String: DeploymentOrder] {
        guard !agentIDs.isEmpty else { return [:] }
        let pending = try await store.newestPendingDeployments(agentIDs: agentIDs)
        guard !pending.isEmpty else { return [:] }
        let agents = try await store.agents(ids: Array(pending.keys))
        var orders: [String: DeploymentOrder] = [:]
        for (agentID, deployment) in pending {
            guard let agent = agents[agentID] else { continue }
            orders[agentID] = Self.order(deployment, system: agent.system)
        }
        return orders
    }

    /// After a reconnect: deployments the agent had started but neither runs nor reported are failed,
    /// so none stays InProgress forever.
    /// Only deployments the agent had started before it connected (`connectedAt`) can be orphans: one it
    /// started over this connection is running, whatever its hello said.
    public func reconcile(_ agent: AgentRecord, running: String?, connectedAt: Date) async throws {
        for stale in try await store.deployments(agentID: agent.id, status: .inProgress)
        where stale.id != running && (stale.startedAt ?? .distantPast) < connectedAt {
            let reason = Self.orphanReason
            let now = Date()
            if let failed = try await store.transitionDeployment(
                id: stale.id, from: [.inProgress], to: .failed, reason: reason, rolledBack: false,
                finalLine: LogLine(time: now, line: Self.finalFailureLine + " " + reason), at: now)
            {
                await events.publish(.logAppended(deploymentID: failed.id))
                logger.warning("deployment orphaned by its agent", metadata: ["deployment": "\(failed.id)"])
                await finished(failed)
                await events.publish(.deploymentChanged(agentID: agent.id, deploymentID: failed.id))
            }
        }
    }

    /// The agent took a deployment. Returns false when it should not run it (cancelled meanwhile).
    public func agentStarted(_ agent: AgentRecord, deploymentID: String, closureSize: Int64?) async throws -> Bool {
        let record = try await owned(deploymentID, by: agent)
        // A size of what it runs or is about to run: never negative, never rewritten after the outcome.
        let size = closureSize.flatMap { $0 >= 0 ? $0 : nil }
        switch record.status {
        case .pending:
            // Held back by its rollout: its wave has not started, whatever the agent heard of it.
            if let membership = try await store.rolloutMembership(deploymentID: deploymentID), membership.held {
                return false
            }
            guard
                try await store.transitionDeployment(
                    id: deploymentID, from: [.pending], to: .inProgress, closureSize: size, at: Date()) != nil
            else {
                return false
            }
            await events.publish(.deploymentChanged(agentID: agent.id, deploymentID: deploymentID))
            return true
        case .inProgress:
            if let size {
                try await store.setClosureSize(deploymentID: deploymentID, size: size)
                await events.publish(.deploymentChanged(agentID: agent.id, deploymentID: deploymentID))
            }
            return true
        case .cancelled, .failed, .succeeded:
            return false
        }
    }

    /// Lines an agent logged for a deployment it is running (or about to run: a cachix agent's log
    /// socket may open before its start is recorded). Nothing is appended after the outcome; lines
    /// are cut to `logLimits`, and their times kept within the deployment's lifetime.
    public func agentLogged(_ agent: AgentRecord, deploymentID: String, lines: [LogLine]) async throws {
        let record = try await owned(deploymentID, by: agent)
        let presumedOrphan = record.status == .failed && record.reason == Self.orphanReason
        guard !record.status.isFinal || presumedOrphan else {
            throw ServiceError.conflict(
                "deployment \(deploymentID) is \(record.status.rawValue); its log takes no more lines")
        }
        guard !lines.isEmpty else { return }
        let accepted = logLimits.accept(lines, since: record.createdAt, now: Date())
        _ = try await store.appendLogLines(deploymentID: deploymentID, lines: accepted, cap: logLimits.cap)
        await events.publish(.logAppended(deploymentID: deploymentID))
    }

    /// The outcome; reported again after a reconnect, so a second report changes nothing. Returns the
    /// order the agent takes next: its newest pending deployment, if it has one.
    @discardableResult
    public func agentFinished(_ agent: AgentRecord, outcome: DeploymentOutcome) async throws -> DeploymentOrder? {
        // Nearly every report ends a deployment the agent runs: recorded without reading it first.
        if let recorded = try await record(outcome, of: agent, from: .inProgress, reasonBefore: nil) {
            return recorded.next
        }
        let record = try await owned(outcome.id, by: agent)
        let presumedOrphan = record.status == .failed && record.reason == Self.orphanReason
        // Cancelled while Pending, but the agent had already started it: its report says what it undid.
        let stoppedAfterCancel = record.status == .cancelled && outcome.cancelled
        guard !record.status.isFinal || presumedOrphan || stoppedAfterCancel else {
            logger.debug("outcome already recorded", metadata: ["deployment": "\(outcome.id)"])
            return try await pendingOrders(forAgentIDs: [agent.id])[agent.id]
        }
        // Only what the agent started can end: Pending → Succeeded is not a transition.
        guard record.status != .pending else {
            throw ServiceError.conflict(
                "deployment \(outcome.id) was never started by agent '\(agent.name)'; report it started first")
        }
        let recorded = try await self.record(outcome, of: agent, from: record.status, reasonBefore: record.reason)
        guard let recorded else { return try await pendingOrders(forAgentIDs: [agent.id])[agent.id] }
        return recorded.next
    }

    /// What recording an outcome leads to: the order the agent takes next, if one is pending.
    private struct RecordedOutcome: Sendable {
        let next: DeploymentOrder?
    }

    /// Records the agent's outcome if its deployment is still `from` (InProgress; Failed as an orphan;
    /// Cancelled after the agent had started it), with its notification, the workspace's webhooks and
    /// the agent's next pending deployment read on the same connection: 10,000 agents report at once,
    /// and each further connection taken for a report is one that an activation would wait behind.
    /// Nil when the deployment was not in `from`.
    private func record(
        _ outcome: DeploymentOutcome, of agent: AgentRecord, from: DeploymentStatus, reasonBefore: String?
    ) async throws -> RecordedOutcome? {
        let presumedOrphan = from == .failed
        let stoppedAfterCancel = from == .cancelled
        var reason = outcome.reason.map { ReportedText.line($0) }
        if !outcome.succeeded && !outcome.cancelled {
            reason = reason ?? "the agent reported a failure"
            if !outcome.rolledBack, !(reason?.contains("roll") ?? false) {
                reason = (reason ?? "") + "; not rolled back"
            }
        }
        if stoppedAfterCancel { reason = [reasonBefore, reason].compactMap { $0 }.joined(separator: "; ") }
        let finalLine =
            outcome.succeeded
            ? Self.finalSuccessLine
            : (outcome.cancelled ? Self.finalCancelLine : Self.finalFailureLine) + " " + (reason ?? "")
                + (outcome.rolledBack ? " (rolled back)" : "")
        // A cancelled deployment the agent stopped (and rolled back) ends Cancelled, not Failed.
        let status: DeploymentStatus = outcome.succeeded ? .succeeded : outcome.cancelled ? .cancelled : .failed
        let now = Date()
        let (events, webhooks, store) = (self.events, self.webhooks, self.store)
        guard
            let (finished, (hooks, pending)) = try await store.transitionDeployment(
                id: outcome.id, from: [from], to: status,
                // The store keeps a reason it is not given; replace the presumption explicitly.
                reason: outcome.succeeded
                    ? (presumedOrphan ? "reported by the agent after it reconnected" : nil) : reason,
                rolledBack: outcome.rolledBack, checkResults: outcome.checks,
                finalLine: LogLine(time: now, line: finalLine),
                // After a success the agent runs the deployment's store path, whatever it says; after a
                // failure or cancel it runs what it ran before, which the server already knows.
                agentRunsIt: outcome.succeeded, agentID: agent.id, at: now,
                then: { connection, finished in
                    await events.publish(
                        [
                            .logAppended(deploymentID: finished.id),
                            .deploymentChanged(agentID: agent.id, deploymentID: finished.id),
                        ], on: connection)
                    // Counted and told to webhooks once, when it was cancelled.
                    let hooks =
                        stoppedAfterCancel
                        ? [] : await webhooks.hooks(workspaceID: finished.workspaceID, on: connection)
                    return (hooks, await nextPending(of: agent, on: connection))
                })
        else { return nil }
        if !stoppedAfterCancel { await self.finished(finished, hooks: hooks) }
        logger.info(
            "deployment finished",
            metadata: [
                "agent": "\(agent.name)", "deployment": "\(finished.id)", "status": "\(finished.status.rawValue)",
                "reason": "\(finished.reason ?? "")", "rolledBack": "\(finished.rolledBack)",
            ])
        return RecordedOutcome(next: pending)
    }

    /// The agent's newest pending deployment as an order, read on `connection`; nil when there is none or
    /// it cannot be read (logged: the agent is handed it when it next connects).
    private func nextPending(of agent: AgentRecord, on connection: StoreConnection) async -> DeploymentOrder? {
        do {
            let pending = try await store.newestPendingDeployments(agentIDs: [agent.id], on: connection)
            return pending[agent.id].map { Self.order($0, system: agent.system) }
        } catch {
            logger.error(
                "could not read the agent's next pending deployment",
                metadata: ["agent": "\(agent.name)", "error": "\(error)"])
            return nil
        }
    }

    /// The agent an agent token belongs to, for connections that carry no hello of their own.
    public func agent(authenticatedAs principal: Principal) async throws -> AgentRecord {
        try AccessPolicy.require(.actAsAgent, by: principal)
        guard let agentID = principal.agentID, let agent = try await store.agent(id: agentID),
            agent.workspaceID == principal.workspaceID
        else {
            throw ServiceError.forbidden("the agent of this token no longer exists")
        }
        return agent
    }

    /// An outcome reported as success or failure alone (the cachix protocol): a cachix agent rolls a
    /// failed deployment back by itself, and after a success runs the deployment's store path.
    /// The agent's next pending deployment, if any, follows.
    @discardableResult
    public func agentFinished(_ agent: AgentRecord, deploymentID: String, succeeded: Bool) async throws
        -> DeploymentOrder?
    {
        let record = try await owned(deploymentID, by: agent)
        return try await agentFinished(
            agent,
            outcome: DeploymentOutcome(
                id: deploymentID, succeeded: succeeded, reason: succeeded ? nil : "the agent reported a failure",
                rolledBack: !succeeded, currentStorePath: succeeded ? record.storePath : nil))
    }

    /// The agents connected to this replica are alive: their last-seen time is now.
    public func agentsSeen(ids: [String]) async throws {
        try await store.recordAgentsSeen(ids: ids, at: Date())
    }

    func appendLines(_ deploymentID: String, _ lines: [String]) async throws {
        let now = Date()
        _ = try await store.appendLogLines(
            deploymentID: deploymentID, lines: lines.map { LogLine(time: now, line: $0) })
        await events.publish(.logAppended(deploymentID: deploymentID))
    }

    private func owned(_ deploymentID: String, by agent: AgentRecord) async throws -> DeploymentRecord {
        guard let record = try await store.deployment(id: deploymentID), record.agentID == agent.id else {
            throw ServiceError.notFound("deployment \(deploymentID) is not one of agent '\(agent.name)'s deployments")
        }
        return record
    }
}
