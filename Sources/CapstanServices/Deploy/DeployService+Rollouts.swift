import CapstanModel
import CapstanStorage
import Foundation

/// Rollouts: the deployments of one activation in waves. A wave starts once every deployment of the
/// wave before it succeeded (or no more failed than allowed) and the pause passed; too many failures
/// stop it, and its deployments not yet started end `Cancelled`.
extension DeployService {
    /// What one look at a rollout did.
    public enum RolloutStep: Sendable, Equatable {
        /// Paused, finished, or gone: nothing to do.
        case idle
        /// The current wave is still running.
        case waiting
        /// The current wave succeeded; the next starts at this time.
        case scheduled(Date)
        /// This instance started wave n (counted from 0).
        case startedWave(Int)
        /// This instance ended the rollout.
        case ended(RolloutState)
        /// Another replica changed the rollout first.
        case lostClaim
    }

    /// The stored plan of a deploy to `names` (in the deploy.json's order), and its waves by agent name.
    func rolloutPlan(_ rollout: RolloutSpec, names: [String], agentIDs: [String: String]) -> (RolloutPlan, [[String]]) {
        let waves = rollout.plan(agents: names)
        var waveOfAgent: [String: Int] = [:]
        for (index, wave) in waves.enumerated() {
            for name in wave { if let id = agentIDs[name] { waveOfAgent[id] = index } }
        }
        let plan = RolloutPlan(
            id: UUID().uuidString.lowercased(), waveOfAgent: waveOfAgent, waveCount: waves.count,
            maxFailures: rollout.maxFailures,
            pauseMilliseconds: Int64(((rollout.pause?.seconds ?? 0) * 1000).rounded()))
        return (plan, waves)
    }

    public func rolloutURL(_ id: String) -> String { "\(publicURL)/rollouts/\(id)" }

    // MARK: Reading and operating

    public func rollout(id: String, by principal: Principal) async throws -> RolloutInfo {
        try AccessPolicy.require(.readDeployments, by: principal)
        return try await rolloutInfo(try rolloutRecord(id: id, workspaceID: principal.workspaceID))
    }

    /// Holds the rollout after its current wave: deployments already sent run on, no new wave starts.
    public func pauseRollout(id: String, by principal: Principal) async throws -> RolloutInfo {
        try await rolloutInfo(move(id, from: .running, to: .paused, .rolloutPaused, by: principal))
    }

    /// Lets a paused rollout go on: a wave that finished meanwhile is followed by the next at once
    /// (or when its pause ends).
    public func resumeRollout(id: String, by principal: Principal) async throws -> RolloutInfo {
        let resumed = try await move(id, from: .paused, to: .running, .rolloutResumed, by: principal)
        _ = try await advanceRollout(id: id)
        return try await rolloutInfo(try await store.rollout(id: id) ?? resumed)
    }

    /// An operator's pause or resume: allowed, applied only from `from`, logged and audited.
    private func move(
        _ id: String, from: RolloutState, to: RolloutState, _ action: AuditAction, by principal: Principal
    ) async throws -> RolloutRecord {
        try AccessPolicy.require(.changeDeployments, by: principal)
        let record = try await rolloutRecord(id: id, workspaceID: principal.workspaceID)
        guard let moved = try await store.setRolloutState(id: id, from: from, to: to) else {
            throw ServiceError.conflict(
                "rollout \(id) is \(try await currentState(record)); only a \(from.rawValue) rollout can be "
                    + (to == .paused ? "paused" : "resumed"))
        }
        logger.info(
            "rollout \(to == .paused ? "paused" : "resumed")",
            metadata: ["rollout": "\(id)", "by": "\(principal.label ?? principal.tokenID)"])
        await audit.record(action, by: principal, target: id, detail: "at wave \(moved.wave + 1)")
        await events.publish(.rolloutChanged(rolloutID: id))
        return moved
    }

    /// Stops the rollout for good: its deployments not yet started end `Cancelled`; those running finish.
    public func abortRollout(id: String, by principal: Principal) async throws -> RolloutInfo {
        try AccessPolicy.require(.changeDeployments, by: principal)
        let record = try await rolloutRecord(id: id, workspaceID: principal.workspaceID)
        let by = principal.label ?? principal.kind.rawValue
        guard
            let end = try await store.endRollout(
                id: id, from: [.running, .paused], to: .aborted, reason: "aborted by \(by)",
                cancelReason: "rollout \(id) was aborted by \(by) before this deployment started", at: Date())
        else {
            throw ServiceError.conflict(
                "rollout \(id) is \(try await currentState(record)); only a Running or Paused rollout can be aborted")
        }
        await ended(end)
        logger.info("rollout aborted", metadata: ["rollout": "\(id)", "by": "\(by)"])
        await audit.record(
            .rolloutAborted, by: principal, target: id,
            detail: "at wave \(end.rollout.wave + 1); \(end.cancelled.count) deployments cancelled")
        return try await rolloutInfo(end.rollout)
    }

    // MARK: Advancing

    /// Looks at a rollout and moves it on as far as it can now: ends it when too many deployments
    /// failed or the last wave succeeded, schedules or starts the next wave. Every change is a
    /// conditional update of the rollout's row, so replicas looking at once agree on one outcome.
    public func advanceRollout(id: String, now: Date = Date()) async throws -> RolloutStep {
        var step = RolloutStep.idle
        while true {
            // A paused rollout still stops when too many failed; it only starts no wave.
            guard let rollout = try await store.rollout(id: id), !rollout.state.isFinal else { return step }
            let members = try await store.rolloutMembers(rolloutID: id)
            let failed = members.filter { $0.deployment.status.isFinal && $0.deployment.status != .succeeded }
            guard rollout.state == .running || failed.count > rollout.maxFailures else { return step }
            if failed.count > rollout.maxFailures {
                let names = try await agentNames(failed.map(\.deployment))
                let why =
                    "\(names.joined(separator: ", ")) did not succeed"
                    + " (\(failed.count) \(failed.count == 1 ? "failure" : "failures"), at most \(rollout.maxFailures) allowed)"
                guard
                    let end = try await store.endRollout(
                        id: id, from: [rollout.state], wave: rollout.wave, to: .failed,
                        reason: "stopped in wave \(rollout.wave + 1): \(why)",
                        cancelReason: "rollout \(id) stopped before this deployment started: \(why)", at: now)
                else { return .lostClaim }
                await ended(end)
                logger.warning(
                    "rollout stopped", metadata: ["rollout": "\(id)", "reason": "\(end.rollout.reason ?? "")"])
                return .ended(.failed)
            }
            guard !members.contains(where: { $0.wave == rollout.wave && !$0.deployment.status.isFinal }) else {
                return step == .idle ? .waiting : step
            }
            if rollout.wave + 1 >= rollout.waveCount {
                guard
                    let end = try await store.endRollout(
                        id: id, from: [.running], wave: rollout.wave, to: .succeeded, reason: nil, cancelReason: nil,
                        at: now)
                else { return .lostClaim }
                await ended(end)
                logger.info("rollout finished", metadata: ["rollout": "\(id)"])
                return .ended(.succeeded)
            }
            if rollout.pauseMilliseconds > 0 {
                guard let startAt = rollout.nextWaveAt else {
                    let at = now.addingTimeInterval(Double(rollout.pauseMilliseconds) / 1000)
                    guard try await store.scheduleNextWave(rolloutID: id, after: rollout.wave, at: at) else {
                        return .lostClaim
                    }
                    logger.info(
                        "rollout wave succeeded; pausing before the next",
                        metadata: ["rollout": "\(id)", "wave": "\(rollout.wave + 1)", "until": "\(at)"])
                    await events.publish(.rolloutChanged(rolloutID: id))
                    return .scheduled(at)
                }
                guard startAt <= now else { return .scheduled(startAt) }
            }
            guard let released = try await store.startNextWave(rolloutID: id, after: rollout.wave) else {
                return .lostClaim
            }
            logger.info(
                "rollout wave started",
                metadata: ["rollout": "\(id)", "wave": "\(rollout.wave + 2)", "deployments": "\(released.count)"])
            await events.publish(
                [.rolloutChanged(rolloutID: id)]
                    + released.map { .deploymentCreated(agentID: $0.agentID, deploymentID: $0.id) })
            step = .startedWave(rollout.wave + 1)
            // The new wave may already be over (its deployments cancelled meanwhile): look again.
        }
    }

    /// After a deployment changed: the rollout it belongs to, moved on. Nil when it belongs to none.
    public func advanceRollout(ofDeployment deploymentID: String) async throws -> RolloutStep? {
        guard let membership = try await store.rolloutMembership(deploymentID: deploymentID) else { return nil }
        return try await advanceRollout(id: membership.rolloutID)
    }

    /// Every running rollout moved on; returns the earliest time a scheduled wave starts.
    public func sweepRollouts() async throws -> Date? {
        var earliest: Date?
        for rollout in try await store.runningRollouts() {
            do {
                if case .scheduled(let at) = try await advanceRollout(id: rollout.id) {
                    earliest = min(earliest ?? at, at)
                }
            } catch {
                logger.error(
                    "could not advance a rollout", metadata: ["rollout": "\(rollout.id)", "error": "\(error)"])
            }
        }
        return earliest
    }

    // MARK: Helpers

    /// Counted, told to webhooks and to agents and followers: the deployments a rollout's end cancelled.
    private func ended(_ end: RolloutEnd) async {
        await finished(end.cancelled)
        await events.publish(
            [.rolloutChanged(rolloutID: end.rollout.id)]
                + end.cancelled.map { .deploymentCancelled(agentID: $0.agentID, deploymentID: $0.id) })
    }

    private func rolloutRecord(id: String, workspaceID: String) async throws -> RolloutRecord {
        guard let record = try await store.rollout(id: id), record.workspaceID == workspaceID else {
            throw ServiceError.notFound("rollout \(id) does not exist in this workspace")
        }
        return record
    }

    private func currentState(_ record: RolloutRecord) async throws -> String {
        (try await store.rollout(id: record.id) ?? record).state.rawValue
    }

    private func agentNames(_ deployments: [DeploymentRecord]) async throws -> [String] {
        let agents = try await store.agents(ids: deployments.map(\.agentID))
        return deployments.map { agents[$0.agentID]?.name ?? $0.agentID }.sorted()
    }

    func rolloutInfo(_ record: RolloutRecord) async throws -> RolloutInfo {
        let members = try await store.rolloutMembers(rolloutID: record.id)
        let agents = try await store.agents(ids: members.map(\.deployment.agentID))
        var waves = Array(repeating: [RolloutInfo.Member](), count: record.waveCount)
        for member in members where member.wave < waves.count {
            let deployment = member.deployment
            waves[member.wave].append(
                RolloutInfo.Member(
                    agent: agents[deployment.agentID]?.name ?? deployment.agentID, deployment: deployment.id,
                    // Held means waiting for its wave: a held deployment that a stop or a newer one cancelled is not.
                    index: deployment.index, status: deployment.status,
                    held: member.held && deployment.status == .pending, reason: deployment.reason,
                    startedOn: deployment.startedAt, finishedOn: deployment.finishedAt))
        }
        return RolloutInfo(
            id: record.id, state: record.state, currentWave: record.wave,
            waves: waves.map { $0.sorted { $0.agent < $1.agent } }, maxFailures: record.maxFailures,
            pause: record.pauseMilliseconds > 0 ? TimeSpan(.milliseconds(record.pauseMilliseconds)) : nil,
            nextWaveAt: record.nextWaveAt, reason: record.reason, createdBy: record.createdBy,
            createdOn: record.createdAt, finishedOn: record.finishedAt, url: rolloutURL(record.id))
    }
}
