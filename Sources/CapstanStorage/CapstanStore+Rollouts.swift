import CapstanModel
import Foundation
import SQLKit

extension CapstanStore {
    /// Within `createDeployments`' transaction: the rollout's row and each deployment's wave, later
    /// waves held, so that no deployment of theirs is ever visible as sendable.
    static func insertRollout(
        _ plan: RolloutPlan, on db: any SQLDatabase, workspaceID: String, activationID: String, createdBy: String?,
        created: [DeploymentRecord], millis: Int64
    ) async throws {
        try await db.raw(
            """
            INSERT INTO rollouts (id, workspace_id, activation_id, state, wave, wave_count, max_failures, pause_ms,
                                  next_wave_at, reason, created_by, created_at, finished_at)
            VALUES (\(bind: plan.id), \(bind: workspaceID), \(bind: activationID),
                    \(bind: RolloutState.running.rawValue), 0, \(bind: plan.waveCount), \(bind: plan.maxFailures),
                    \(bind: plan.pauseMilliseconds), NULL, NULL, \(bind: createdBy), \(bind: millis), NULL)
            """
        ).run()
        for start in stride(from: 0, to: created.count, by: 200) {
            var values: SQLQueryString = ""
            for (offset, deployment) in created[start..<min(start + 200, created.count)].enumerated() {
                let wave = plan.waveOfAgent[deployment.agentID] ?? (plan.waveCount - 1)
                if offset > 0 { values += ", " }
                values += "(\(bind: deployment.id), \(bind: plan.id), \(bind: wave), \(bind: wave > 0))"
            }
            try await db.raw(
                "INSERT INTO rollout_deployments (deployment_id, rollout_id, wave, held) VALUES \(values)"
            ).run()
        }
    }

    /// The SQL condition that leaves out deployments held back by their rollout.
    static let notHeld =
        "NOT EXISTS (SELECT 1 FROM rollout_deployments h WHERE h.deployment_id = deployments.id AND h.held = TRUE)"

    public func rollout(id: String) async throws -> RolloutRecord? {
        try await describingFailure("looking up rollout \(id)") {
            try await sql.raw("SELECT \(unsafeRaw: Self.rolloutColumns) FROM rollouts WHERE id = \(bind: id)")
                .first().map(RolloutRecord.init(row:))
        }
    }

    /// Rollouts still moving (`Running`), oldest first: what the periodic sweep looks at.
    public func runningRollouts() async throws -> [RolloutRecord] {
        try await describingFailure("listing running rollouts") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.rolloutColumns) FROM rollouts
                WHERE state = \(bind: RolloutState.running.rawValue) ORDER BY created_at
                """
            ).all().map(RolloutRecord.init(row:))
        }
    }

    /// The deployments of a rollout with their waves, by wave then agent.
    public func rolloutMembers(rolloutID: String) async throws -> [RolloutMember] {
        let columns = Self.deploymentColumns.split(separator: ",").map {
            "d." + $0.trimmingCharacters(in: .whitespaces)
        }
        .joined(separator: ", ")
        return try await describingFailure("listing the deployments of rollout \(rolloutID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: columns), r.wave AS rollout_wave, r.held AS rollout_held
                FROM rollout_deployments r JOIN deployments d ON d.id = r.deployment_id
                WHERE r.rollout_id = \(bind: rolloutID) ORDER BY r.wave, d.agent_id
                """
            ).all().map { row in
                RolloutMember(
                    deployment: try DeploymentRecord(row: row),
                    wave: try row.decode(column: "rollout_wave", as: Int.self),
                    held: try row.decode(column: "rollout_held", as: Bool.self))
            }
        }
    }

    /// The rollout a deployment belongs to, if any.
    public func rolloutMembership(deploymentID: String) async throws -> RolloutMembership? {
        try await describingFailure("looking up the rollout of deployment \(deploymentID)") {
            try await sql.raw(
                "SELECT rollout_id, wave, held FROM rollout_deployments WHERE deployment_id = \(bind: deploymentID)"
            ).first().map { row in
                RolloutMembership(
                    rolloutID: try row.decode(column: "rollout_id", as: String.self),
                    wave: try row.decode(column: "wave", as: Int.self),
                    held: try row.decode(column: "held", as: Bool.self))
            }
        }
    }

    /// Records when the wave after `wave` starts, unless a replica already did; false when the rollout
    /// moved on or stopped meanwhile.
    public func scheduleNextWave(rolloutID: String, after wave: Int, at date: Date) async throws -> Bool {
        try await describingFailure("scheduling the next wave of rollout \(rolloutID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE rollouts SET next_wave_at = \(bind: date.unixMilliseconds)
                    WHERE id = \(bind: rolloutID) AND wave = \(bind: wave) AND next_wave_at IS NULL
                      AND state IN (\(bind: RolloutState.running.rawValue), \(bind: RolloutState.paused.rawValue))
                    RETURNING id
                    """
                ).first() != nil
            }
        }
    }

    /// Starts wave `wave + 1` if the rollout is still running wave `wave`: the conditional update of the
    /// rollout's row is the claim, so of several replicas exactly one starts it. Releases the wave's
    /// deployments in the same transaction and returns those still pending; nil when the claim was lost.
    public func startNextWave(rolloutID: String, after wave: Int) async throws -> [DeploymentRecord]? {
        try await describingFailure("starting wave \(wave + 1) of rollout \(rolloutID)") {
            try await database.transaction { db in
                let claimed =
                    try await db.raw(
                        """
                        UPDATE rollouts SET wave = \(bind: wave + 1), next_wave_at = NULL
                        WHERE id = \(bind: rolloutID) AND wave = \(bind: wave) AND wave + 1 < wave_count
                          AND state = \(bind: RolloutState.running.rawValue)
                        RETURNING id
                        """
                    ).first() != nil
                guard claimed else { return nil }
                try await db.raw(
                    """
                    UPDATE rollout_deployments SET held = \(bind: false)
                    WHERE rollout_id = \(bind: rolloutID) AND wave = \(bind: wave + 1)
                    """
                ).run()
                return try await db.raw(
                    """
                    SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments
                    WHERE status = \(bind: DeploymentStatus.pending.rawValue) AND id IN (
                        SELECT deployment_id FROM rollout_deployments
                        WHERE rollout_id = \(bind: rolloutID) AND wave = \(bind: wave + 1))
                    ORDER BY agent_id
                    """
                ).all().map(DeploymentRecord.init(row:))
            }
        }
    }

    /// Ends a rollout that is in one of `from` (and, when given, still at `wave`): the one replica whose
    /// update matches ends it. With a `cancelReason`, its deployments not yet started end `Cancelled`
    /// in the same transaction. Nil when it was not in `from` (another replica or an operator was first).
    public func endRollout(
        id: String, from: Set<RolloutState>, wave: Int? = nil, to state: RolloutState, reason: String?,
        cancelReason: String?, at date: Date
    ) async throws -> RolloutEnd? {
        let fromValues: [any Encodable & Sendable] = from.map(\.rawValue).sorted()
        var condition: SQLQueryString = "id = \(bind: id) AND state IN (\(binds: fromValues))"
        if let wave { condition += " AND wave = \(bind: wave)" }
        let matching = condition
        let millis = date.unixMilliseconds
        return try await describingFailure("ending rollout \(id) as \(state.rawValue)") {
            try await database.transaction { db in
                guard
                    let row = try await db.raw(
                        """
                        UPDATE rollouts SET state = \(bind: state.rawValue), reason = \(bind: reason),
                            finished_at = \(bind: millis), next_wave_at = NULL
                        WHERE \(matching)
                        RETURNING \(unsafeRaw: Self.rolloutColumns)
                        """
                    ).first()
                else { return nil }
                var cancelled: [DeploymentRecord] = []
                if let cancelReason {
                    cancelled = try await db.raw(
                        """
                        UPDATE deployments
                        SET status = \(bind: DeploymentStatus.cancelled.rawValue), reason = \(bind: cancelReason),
                            finished_at = \(bind: millis)
                        WHERE status = \(bind: DeploymentStatus.pending.rawValue)
                          AND id IN (SELECT deployment_id FROM rollout_deployments WHERE rollout_id = \(bind: id))
                        RETURNING \(unsafeRaw: Self.deploymentColumns)
                        """
                    ).all().map(DeploymentRecord.init(row:)).sorted { $0.agentID < $1.agentID }
                }
                return RolloutEnd(rollout: try RolloutRecord(row: row), cancelled: cancelled)
            }
        }
    }

    /// Pauses or resumes: moves the rollout from `from` to `to`; nil when it was not in `from`.
    public func setRolloutState(id: String, from: RolloutState, to: RolloutState) async throws -> RolloutRecord? {
        try await describingFailure("moving rollout \(id) from \(from.rawValue) to \(to.rawValue)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE rollouts SET state = \(bind: to.rawValue)
                    WHERE id = \(bind: id) AND state = \(bind: from.rawValue)
                    RETURNING \(unsafeRaw: Self.rolloutColumns)
                    """
                ).first().map(RolloutRecord.init(row:))
            }
        }
    }

    static let rolloutColumns = """
        id, workspace_id, activation_id, state, wave, wave_count, max_failures, pause_ms, next_wave_at, reason, \
        created_by, created_at, finished_at
        """
}

extension RolloutRecord {
    init(row: any SQLRow) throws {
        let id = try row.decode(column: "id", as: String.self)
        let stateText = try row.decode(column: "state", as: String.self)
        guard let state = RolloutState(rawValue: stateText) else {
            throw StorageError.invalidRow(table: "rollouts", key: id, reason: "unknown rollout state '\(stateText)'")
        }
        self.init(
            id: id, workspaceID: try row.decode(column: "workspace_id", as: String.self),
            activationID: try row.decode(column: "activation_id", as: String.self), state: state,
            wave: try row.decode(column: "wave", as: Int.self),
            waveCount: try row.decode(column: "wave_count", as: Int.self),
            maxFailures: try row.decode(column: "max_failures", as: Int.self),
            pauseMilliseconds: try row.decode(column: "pause_ms", as: Int64.self),
            nextWaveAt: try row.decode(column: "next_wave_at", as: Int64?.self).map(Date.init(unixMilliseconds:)),
            reason: try row.decode(column: "reason", as: String?.self),
            createdBy: try row.decode(column: "created_by", as: String?.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)),
            finishedAt: try row.decode(column: "finished_at", as: Int64?.self).map(Date.init(unixMilliseconds:)))
    }
}
