import CapstanModel
import Foundation
import NixCore
import SQLKit

extension CapstanStore {
    /// Creates one pending deployment per request, all or nothing, for one activation of a deploy.json.
    ///
    /// Each agent's deployments still `Pending` end `Cancelled` ("superseded by deployment #N"): an
    /// agent only ever needs its newest configuration. Indexes count 1, 2, 3… per agent. Concurrent
    /// activations for the same agent are serialised by locking the agent rows (PostgreSQL) or by the
    /// write lock (SQLite), so indexes stay unique and consecutive and one deployment stays pending.
    /// Throws `StorageError.notFound(what: "agent", …)` when an agent is not in the workspace. Callers send
    /// one request per agent: a second one for the same agent supersedes the first within the batch.
    /// With a `rollout`, its row and each deployment's wave are stored in the same transaction, and the
    /// deployments of later waves are held back from their agents. With an `audit` event (and an
    /// `activationID`), one copy of it per created deployment is recorded in the same transaction, its
    /// target the deployment and its detail `<agent name> #<index>`.
    public func createDeployments(
        workspaceID: String, activationID: String?, createdBy: String?, requests: [DeploymentRequest], at date: Date,
        rollout: RolloutPlan? = nil, audit: AuditEventRecord? = nil
    ) async throws -> DeploymentBatch {
        guard !requests.isEmpty else { return DeploymentBatch(created: [], superseded: []) }
        // One order for every activation, so two of them never wait on each other's locks in a cycle.
        let agentIDs = Array(Set(requests.map(\.agentID))).sorted()
        let backend = database.backend
        let lockClause = backend == .postgres ? "ORDER BY id FOR UPDATE" : ""
        let millis = date.unixMilliseconds
        return try await describingFailure(
            "creating deployments for agents \(agentIDs.joined(separator: ", ")) in workspace \(workspaceID)"
        ) {
            try await database.transaction { db in
                let found = Set(
                    try await db.raw(
                        """
                        SELECT id FROM agents
                        WHERE workspace_id = \(bind: workspaceID) AND \(Self.keyMatch("id", agentIDs, backend: backend))
                        \(unsafeRaw: lockClause)
                        """
                    ).all(decodingColumn: "id", as: String.self))
                if let missing = agentIDs.first(where: { !found.contains($0) }) {
                    throw StorageError.notFound(what: "agent", key: missing)
                }
                if agentIDs.count == requests.count {
                    let together =
                        backend == .postgres ? Self.createDeploymentsTogetherOnPostgres : Self.createDeploymentsTogether
                    let batch = try await together(db, workspaceID, activationID, createdBy, requests, millis)
                    if let rollout {
                        try await Self.insertRollout(
                            rollout, on: db, workspaceID: workspaceID, activationID: activationID ?? rollout.id,
                            createdBy: createdBy, created: batch.created, millis: millis)
                    }
                    if let audit, let activationID {
                        try await Self.auditActivation(activationID, as: audit, on: db, backend: database.backend)
                    }
                    return batch
                }
                if let rollout {
                    throw StorageError.query(
                        operation: "creating rollout \(rollout.id)", reason: "a rollout names each agent once")
                }
                var created: [DeploymentRecord] = []
                var superseded: [DeploymentRecord] = []
                for request in requests {
                    let newest =
                        try await db.raw(
                            """
                            SELECT COALESCE(MAX(idx), 0) AS idx FROM deployments
                            WHERE agent_id = \(bind: request.agentID)
                            """
                        ).first(decodingColumn: "idx", as: Int.self) ?? 0
                    let index = newest + 1
                    superseded += try await db.raw(
                        """
                        UPDATE deployments
                        SET status = \(bind: DeploymentStatus.cancelled.rawValue),
                            reason = \(bind: "superseded by deployment #\(index)"), finished_at = \(bind: millis)
                        WHERE agent_id = \(bind: request.agentID)
                          AND status = \(bind: DeploymentStatus.pending.rawValue)
                        RETURNING \(unsafeRaw: Self.deploymentColumns)
                        """
                    ).all().map(DeploymentRecord.init(row:)).sorted { $0.index < $1.index }
                    let row = try await db.raw(
                        """
                        INSERT INTO deployments (id, workspace_id, agent_id, idx, store_path, rollback_script, status,
                                                 reason, rolled_back, closure_size, created_at, started_at,
                                                 finished_at, created_by, activation_id, activation)
                        VALUES (\(bind: UUID().uuidString.lowercased()), \(bind: workspaceID),
                                \(bind: request.agentID), \(bind: index), \(bind: request.storePath.path),
                                \(bind: JSONColumn.encode(request.rollbackScript)), \(bind: DeploymentStatus.pending.rawValue),
                                NULL, \(bind: false), NULL, \(bind: millis), NULL, NULL, \(bind: createdBy),
                                \(bind: activationID), \(bind: JSONColumn.encode(request.activation)))
                        RETURNING \(unsafeRaw: Self.deploymentColumns)
                        """
                    ).first()
                    guard let row else {
                        throw StorageError.query(
                            operation: "creating deployment #\(index) of agent \(request.agentID)",
                            reason: "the INSERT returned no row")
                    }
                    created.append(try DeploymentRecord(row: row))
                }
                return DeploymentBatch(created: created, superseded: superseded)
            }
        }
    }

    /// What the loop in `createDeployments` does when every request names a different agent, with three
    /// statements per 200 agents instead of three per agent: a deploy.json may name a thousand.
    private static func createDeploymentsTogether(
        _ db: any SQLDatabase, workspaceID: String, activationID: String?, createdBy: String?,
        requests: [DeploymentRequest], millis: Int64
    ) async throws -> DeploymentBatch {
        var created: [DeploymentRecord] = []
        var superseded: [DeploymentRecord] = []
        let createdAt = Date(unixMilliseconds: millis)
        var encoded = JSONColumnMemo()
        for start in stride(from: 0, to: requests.count, by: 200) {
            let chunk = requests[start..<min(start + 200, requests.count)]
            let ids: [any Encodable & Sendable] = chunk.map(\.agentID)
            var newIndex: [String: Int] = [:]
            for row in try await db.raw(
                """
                SELECT agent_id, MAX(idx) AS idx FROM deployments WHERE agent_id IN (\(binds: ids)) GROUP BY agent_id
                """
            ).all() {
                newIndex[try row.decode(column: "agent_id", as: String.self)] = try row.decode(
                    column: "idx", as: Int.self)
            }
            for request in chunk { newIndex[request.agentID] = (newIndex[request.agentID] ?? 0) + 1 }
            var reasons: SQLQueryString = "CASE agent_id"
            for request in chunk {
                reasons +=
                    " WHEN \(bind: request.agentID) THEN \(bind: "superseded by deployment #\(newIndex[request.agentID]!)")"
            }
            reasons += " END"
            let position = Dictionary(uniqueKeysWithValues: chunk.enumerated().map { ($1.agentID, $0) })
            superseded += try await db.raw(
                """
                UPDATE deployments
                SET status = \(bind: DeploymentStatus.cancelled.rawValue), reason = \(reasons),
                    finished_at = \(bind: millis)
                WHERE agent_id IN (\(binds: ids)) AND status = \(bind: DeploymentStatus.pending.rawValue)
                RETURNING \(unsafeRaw: Self.deploymentColumns)
                """
            ).all().map(DeploymentRecord.init(row:)).sorted {
                (position[$0.agentID]!, $0.index) < (position[$1.agentID]!, $1.index)
            }
            let records = chunk.map { request in
                DeploymentRecord(
                    id: UUID().uuidString.lowercased(), workspaceID: workspaceID, agentID: request.agentID,
                    index: newIndex[request.agentID]!, storePath: request.storePath,
                    rollbackScript: request.rollbackScript, status: .pending, createdAt: createdAt,
                    createdBy: createdBy,
                    activationID: activationID, activation: request.activation)
            }
            // What every row shares is bound once; each row binds only what is its own.
            var rows: SQLQueryString = ""
            for (offset, record) in records.enumerated() {
                if offset > 0 { rows += ", " }
                rows += """
                    (\(bind: record.id), \(bind: record.agentID), \(bind: record.index), \(bind: record.storePath.path),
                     \(bind: encoded.json(record.rollbackScript)), \(bind: encoded.json(record.activation)))
                    """
            }
            try await db.raw(
                """
                INSERT INTO deployments (\(unsafeRaw: Self.insertedColumns))
                SELECT v.column1, \(bind: workspaceID), v.column2, v.column3, v.column4, v.column5,
                       \(bind: DeploymentStatus.pending.rawValue), NULL, \(bind: false), NULL, \(bind: millis), NULL, NULL,
                       \(bind: createdBy), \(bind: activationID), v.column6
                FROM (VALUES \(rows)) AS v
                """
            ).run()
            created += records
        }
        return DeploymentBatch(created: created, superseded: superseded)
    }

    /// `createDeploymentsTogether` on PostgreSQL: three statements whatever the number of agents, with
    /// each column's values as one array parameter (`unnest`) instead of 6 parameters per row and a
    /// statement per 200 agents; a deploy.json of 10,000 agents was 150 round trips.
    private static func createDeploymentsTogetherOnPostgres(
        _ db: any SQLDatabase, workspaceID: String, activationID: String?, createdBy: String?,
        requests: [DeploymentRequest], millis: Int64
    ) async throws -> DeploymentBatch {
        let agentIDs = requests.map(\.agentID)
        var newIndex: [String: Int] = [:]
        for row in try await db.raw(
            """
            SELECT agent_id, MAX(idx) AS idx FROM deployments WHERE agent_id = ANY(\(bind: agentIDs)) GROUP BY agent_id
            """
        ).all() {
            newIndex[try row.decode(column: "agent_id", as: String.self)] = try row.decode(column: "idx", as: Int.self)
        }
        for request in requests { newIndex[request.agentID] = (newIndex[request.agentID] ?? 0) + 1 }
        let indexes = agentIDs.map { newIndex[$0]! }
        let position = Dictionary(uniqueKeysWithValues: agentIDs.enumerated().map { ($1, $0) })
        let superseded = try await db.raw(
            """
            UPDATE deployments
            SET status = \(bind: DeploymentStatus.cancelled.rawValue), reason = v.why, finished_at = \(bind: millis)
            FROM unnest(\(bind: agentIDs)::text[], \(bind: indexes.map { "superseded by deployment #\($0)" })::text[])
                AS v(agent, why)
            WHERE deployments.agent_id = v.agent AND deployments.status = \(bind: DeploymentStatus.pending.rawValue)
            RETURNING \(unsafeRaw: deploymentColumns)
            """
        ).all().map(DeploymentRecord.init(row:)).sorted {
            (position[$0.agentID]!, $0.index) < (position[$1.agentID]!, $1.index)
        }
        let createdAt = Date(unixMilliseconds: millis)
        let records = requests.map { request in
            DeploymentRecord(
                id: UUID().uuidString.lowercased(), workspaceID: workspaceID, agentID: request.agentID,
                index: newIndex[request.agentID]!, storePath: request.storePath,
                rollbackScript: request.rollbackScript, status: .pending, createdAt: createdAt, createdBy: createdBy,
                activationID: activationID, activation: request.activation)
        }
        var encoded = JSONColumnMemo()
        let rollbackScripts = records.map { encoded.json($0.rollbackScript) }
        let activations = records.map { encoded.json($0.activation) }
        try await db.raw(
            """
            INSERT INTO deployments (\(unsafeRaw: Self.insertedColumns))
            SELECT v.id, \(bind: workspaceID), v.agent, v.idx, v.path, v.rollback,
                   \(bind: DeploymentStatus.pending.rawValue), NULL, \(bind: false), NULL, \(bind: millis), NULL, NULL,
                   \(bind: createdBy), \(bind: activationID), v.activation
            FROM unnest(\(bind: records.map(\.id))::text[], \(bind: agentIDs)::text[], \(bind: indexes)::bigint[],
                        \(bind: records.map(\.storePath.path))::text[], \(bind: rollbackScripts)::text[],
                        \(bind: activations)::text[])
                AS v(id, agent, idx, path, rollback, activation)
            """
        ).run()
        return DeploymentBatch(created: records, superseded: superseded)
    }

    /// Records `audit` once per deployment of the activation, in one statement: the rows are read
    /// from the deployments just written instead of being bound one by one.
    private static func auditActivation(
        _ activationID: String, as audit: AuditEventRecord, on db: any SQLDatabase, backend: DatabaseBackend
    ) async throws {
        try await db.raw(
            """
            INSERT INTO audit_events (id, workspace_id, time, actor, actor_token_id, action, target, detail)
            SELECT \(unsafeRaw: newUUIDExpression(backend)), d.workspace_id, \(bind: audit.time.unixMilliseconds),
                   \(bind: audit.actor), \(bind: audit.actorTokenID), \(bind: audit.action), d.id,
                   a.name || ' #' || CAST(d.idx AS TEXT)
            FROM deployments d JOIN agents a ON a.id = d.agent_id
            WHERE d.activation_id = \(bind: activationID) AND d.workspace_id = \(bind: audit.workspaceID)
            """
        ).run()
    }

    /// A random lower-case UUID (version 4), made by the database, one per row.
    private static func newUUIDExpression(_ backend: DatabaseBackend) -> String {
        switch backend {
        case .postgres: "gen_random_uuid()::text"
        case .sqlite:
            """
            (lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || substr(lower(hex(randomblob(2))), 2) \
            || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || substr(lower(hex(randomblob(2))), 2) || '-' \
            || lower(hex(randomblob(6))))
            """
        }
    }

    public func deployment(id: String) async throws -> DeploymentRecord? {
        try await describingFailure("looking up deployment \(id)") {
            try await sql.raw(
                "SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments WHERE id = \(bind: id)"
            ).first().map(DeploymentRecord.init(row:))
        }
    }

    /// Many deployments by ID, keyed by ID (unknown IDs are absent): one query per 500.
    public func deployments(ids: [String]) async throws -> [String: DeploymentRecord] {
        var found: [String: DeploymentRecord] = [:]
        for chunk in keySlices(ids) {
            try await describingFailure("looking up \(chunk.count) deployments by ID") {
                for row in try await sql.raw(
                    "SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments WHERE \(keyMatch("id", chunk))"
                ).all() {
                    let deployment = try DeploymentRecord(row: row)
                    found[deployment.id] = deployment
                }
            }
        }
        return found
    }

    /// The newest deployments of a workspace (creation time, then index, descending), optionally only
    /// those of one agent or in one status: for the dashboard and the deploy API's listings.
    public func deployments(
        workspaceID: String, agentID: String? = nil, status: DeploymentStatus? = nil, limit: Int = 100
    ) async throws -> [DeploymentRecord] {
        var query: SQLQueryString =
            "SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments WHERE workspace_id = \(bind: workspaceID)"
        if let agentID { query += " AND agent_id = \(bind: agentID)" }
        if let status { query += " AND status = \(bind: status.rawValue)" }
        query += " ORDER BY created_at DESC, agent_id, idx DESC LIMIT \(literal: max(0, limit))"
        let filters = [agentID.map { "agent \($0)" }, status.map { "status \($0.rawValue)" }].compactMap { $0 }
        return try await describingFailure(
            "listing deployments of workspace \(workspaceID)"
                + (filters.isEmpty ? "" : " (\(filters.joined(separator: ", ")))")
        ) {
            try await sql.raw(query).all().map(DeploymentRecord.init(row:))
        }
    }

    /// The deployments of an agent, oldest first, optionally only those in one status.
    public func deployments(agentID: String, status: DeploymentStatus? = nil) async throws -> [DeploymentRecord] {
        var query: SQLQueryString =
            "SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments WHERE agent_id = \(bind: agentID)"
        if let status { query += " AND status = \(bind: status.rawValue)" }
        query += " ORDER BY idx"
        return try await describingFailure(
            "listing deployments of agent \(agentID)" + (status.map { " in status \($0.rawValue)" } ?? "")
        ) {
            try await sql.raw(query).all().map(DeploymentRecord.init(row:))
        }
    }

    /// What an agent should run when it connects: its newest deployment still `Pending`, unless its
    /// rollout holds it back until its wave starts.
    public func newestPendingDeployment(agentID: String) async throws -> DeploymentRecord? {
        try await describingFailure("looking up the newest pending deployment of agent \(agentID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments
                WHERE agent_id = \(bind: agentID) AND status = \(bind: DeploymentStatus.pending.rawValue)
                  AND \(unsafeRaw: Self.notHeld)
                ORDER BY idx DESC LIMIT 1
                """
            ).first().map(DeploymentRecord.init(row:))
        }
    }

    /// `newestPendingDeployment(agentID:)` of many agents at once, keyed by agent ID (agents with nothing
    /// pending are absent): one query per 500 agents, for sending a deploy of many agents.
    /// `on` is a connection to use instead of the pool (one that just recorded a report, say).
    public func newestPendingDeployments(
        agentIDs: [String], on connection: StoreConnection? = nil
    ) async throws -> [String: DeploymentRecord] {
        let sql = connection?.sql ?? sql
        var newest: [String: DeploymentRecord] = [:]
        for chunk in keySlices(agentIDs) {
            try await describingFailure("looking up the newest pending deployments of \(chunk.count) agents") {
                for row in try await sql.raw(
                    """
                    SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments
                    WHERE \(keyMatch("agent_id", chunk)) AND status = \(bind: DeploymentStatus.pending.rawValue)
                      AND \(unsafeRaw: Self.notHeld)
                    """
                ).all() {
                    let deployment = try DeploymentRecord(row: row)
                    if let other = newest[deployment.agentID], other.index > deployment.index { continue }
                    newest[deployment.agentID] = deployment
                }
            }
        }
        return newest
    }

    /// Moves a deployment to `to` only if it is in one of `from` (compare-and-set), so two replicas or
    /// an agent and a cancelling user cannot both win. Moving to `InProgress` sets `startedAt`, to a
    /// final status sets `finishedAt`; a nil `reason`, `rolledBack`, `checkResults` or `closureSize` keeps
    /// the stored value. Only when the move happens, and in its transaction: `finalLine` ends the log and,
    /// with `agentRunsIt`, the deployment's store path becomes its agent's current one. One write per
    /// report of an agent, whatever it changes, keeps SQLite's single writer free for the fleet.
    /// Returns the updated deployment, or nil when it does not exist or was not in `from`.
    public func transitionDeployment(
        id: String, from: Set<DeploymentStatus>, to: DeploymentStatus, reason: String? = nil,
        rolledBack: Bool? = nil, checkResults: [CheckResult]? = nil, closureSize: Int64? = nil,
        finalLine: LogLine? = nil, agentRunsIt: Bool = false, at date: Date
    ) async throws -> DeploymentRecord? {
        try await transitionDeployment(
            id: id, from: from, to: to, reason: reason, rolledBack: rolledBack, checkResults: checkResults,
            closureSize: closureSize, finalLine: finalLine, agentRunsIt: agentRunsIt, at: date, then: { _, _ in () }
        )?.moved
    }

    /// `transitionDeployment`, only for a deployment of `agentID` when it is given, followed by `after`
    /// on the same connection once the move is committed (it does not run when nothing moved): what a
    /// report leads to (its notification, what the agent does next) takes no other pooled connection.
    public func transitionDeployment<After: Sendable>(
        id: String, from: Set<DeploymentStatus>, to: DeploymentStatus, reason: String? = nil,
        rolledBack: Bool? = nil, checkResults: [CheckResult]? = nil, closureSize: Int64? = nil,
        finalLine: LogLine? = nil, agentRunsIt: Bool = false, agentID: String? = nil, at date: Date,
        then after: @escaping @Sendable (StoreConnection, DeploymentRecord) async -> After
    ) async throws -> (moved: DeploymentRecord, after: After)? {
        guard !from.isEmpty else { return nil }
        let fromValues: [any Encodable & Sendable] = from.map(\.rawValue).sorted()
        var assignments: SQLQueryString = "status = \(bind: to.rawValue)"
        if let reason { assignments += ", reason = \(bind: reason)" }
        if let rolledBack { assignments += ", rolled_back = \(bind: rolledBack)" }
        if let checkResults { assignments += ", check_results = \(bind: JSONColumn.encode(checkResults))" }
        if let closureSize { assignments += ", closure_size = \(bind: closureSize)" }
        if to == .inProgress { assignments += ", started_at = \(bind: date.unixMilliseconds)" }
        if to.isFinal { assignments += ", finished_at = \(bind: date.unixMilliseconds)" }
        let fromText = from.map(\.rawValue).sorted().joined(separator: "|")
        var statement: SQLQueryString = """
            UPDATE deployments SET \(assignments)
            WHERE id = \(bind: id) AND status IN (\(binds: fromValues))
            """
        if let agentID { statement += " AND agent_id = \(bind: agentID)" }
        statement += " RETURNING \(unsafeRaw: Self.deploymentColumns)"
        let update = statement
        let backend = database.backend
        let (moved, followed) = try await describingFailure(
            "moving deployment \(id) from \(fromText) to \(to.rawValue)"
        ) {
            try await database.transaction(
                { db -> DeploymentRecord? in
                    guard let moved = try await db.raw(update).first().map(DeploymentRecord.init(row:)) else {
                        return nil
                    }
                    if let finalLine {
                        _ = try await Self.appendLogLines(
                            on: db, backend: backend, deploymentID: id, lines: [finalLine], cap: nil)
                    }
                    if agentRunsIt {
                        try await db.raw(
                            """
                            UPDATE agents SET current_store_path = \(bind: moved.storePath.path) WHERE id = \(bind: moved.agentID)
                            """
                        ).run()
                    }
                    return moved
                },
                then: { db, moved -> After? in
                    guard let moved else { return nil }
                    return await after(StoreConnection(sql: db), moved)
                })
        }
        guard let moved, let followed else { return nil }
        return (moved, followed)
    }

    /// Records the size of the closure an agent realised. Throws `StorageError.notFound` for an unknown deployment.
    public func setClosureSize(deploymentID: String, size: Int64) async throws {
        let updated = try await describingFailure("setting the closure size of deployment \(deploymentID) to \(size)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE deployments SET closure_size = \(bind: size) WHERE id = \(bind: deploymentID) RETURNING id
                    """
                ).first() != nil
            }
        }
        guard updated else { throw StorageError.notFound(what: "deployment", key: deploymentID) }
    }

    /// The agent's succeeded deployment with the highest index (below `index` when given): what a
    /// rollback goes back to, and a closure garbage collection must keep.
    public func lastSucceededDeployment(agentID: String, before index: Int? = nil) async throws -> DeploymentRecord? {
        var query: SQLQueryString = """
            SELECT \(unsafeRaw: Self.deploymentColumns) FROM deployments
            WHERE agent_id = \(bind: agentID) AND status = \(bind: DeploymentStatus.succeeded.rawValue)
            """
        if let index { query += " AND idx < \(bind: index)" }
        query += " ORDER BY idx DESC LIMIT 1"
        return try await describingFailure(
            "looking up the last succeeded deployment of agent \(agentID)" + (index.map { " before #\($0)" } ?? "")
        ) {
            try await sql.raw(query).first().map(DeploymentRecord.init(row:))
        }
    }

    /// How many deployments are in each status, in one workspace or (nil) all: for metrics. Every
    /// status is present, with 0 when none is in it, so gauges drop back to zero.
    public func deploymentCounts(workspaceID: String?) async throws -> [DeploymentStatus: Int] {
        var query: SQLQueryString = "SELECT status, CAST(COUNT(*) AS BIGINT) AS n FROM deployments"
        if let workspaceID { query += " WHERE workspace_id = \(bind: workspaceID)" }
        query += " GROUP BY status"
        return try await describingFailure(
            "counting deployments" + (workspaceID.map { " of workspace \($0)" } ?? " of all workspaces")
        ) {
            var counts = Dictionary(uniqueKeysWithValues: DeploymentStatus.allCases.map { ($0, 0) })
            for row in try await sql.raw(query).all() {
                let text = try row.decode(column: "status", as: String.self)
                guard let status = DeploymentStatus(rawValue: text) else {
                    throw StorageError.invalidRow(
                        table: "deployments", key: "status '\(text)'", reason: "unknown deployment status '\(text)'")
                }
                counts[status] = Int(try row.decode(column: "n", as: Int64.self))
            }
            return counts
        }
    }

    /// The id and status of every deployment still `Pending` or `InProgress`, in every workspace: what
    /// the in-memory metrics follow from start.
    public func openDeployments() async throws -> [(id: String, status: DeploymentStatus)] {
        let open: [any Encodable & Sendable] = [
            DeploymentStatus.pending.rawValue, DeploymentStatus.inProgress.rawValue,
        ]
        return try await describingFailure("listing open deployments") {
            try await sql.raw("SELECT id, status FROM deployments WHERE status IN (\(binds: open))").all().map { row in
                let text = try row.decode(column: "status", as: String.self)
                guard let status = DeploymentStatus(rawValue: text) else {
                    throw StorageError.invalidRow(
                        table: "deployments", key: "status '\(text)'", reason: "unknown deployment status '\(text)'")
                }
                return (id: try row.decode(column: "id", as: String.self), status: status)
            }
        }
    }

    /// The columns a new deployment's row is written with, in the order the batch inserts give them.
    static let insertedColumns = """
        id, workspace_id, agent_id, idx, store_path, rollback_script, status, reason, rolled_back, closure_size, \
        created_at, started_at, finished_at, created_by, activation_id, activation
        """

    static let deploymentColumns = """
        id, workspace_id, agent_id, idx, store_path, rollback_script, status, reason, rolled_back, closure_size, \
        created_at, started_at, finished_at, created_by, activation_id, activation, check_results
        """
}

extension DeploymentRecord {
    init(row: any SQLRow) throws {
        let id = try row.decode(column: "id", as: String.self)
        let statusText = try row.decode(column: "status", as: String.self)
        guard let status = DeploymentStatus(rawValue: statusText) else {
            throw StorageError.invalidRow(
                table: "deployments", key: id, reason: "unknown deployment status '\(statusText)'")
        }
        self.init(
            id: id,
            workspaceID: try row.decode(column: "workspace_id", as: String.self),
            agentID: try row.decode(column: "agent_id", as: String.self),
            index: try row.decode(column: "idx", as: Int.self),
            storePath: try row.decodeStorePath(column: "store_path", table: "deployments", key: id),
            rollbackScript: try JSONColumn.decodeRow(
                [String: StorePath].self, from: try row.decode(column: "rollback_script", as: String?.self),
                table: "deployments", key: id, column: "rollback_script"),
            status: status,
            reason: try row.decode(column: "reason", as: String?.self),
            rolledBack: try row.decode(column: "rolled_back", as: Bool.self),
            closureSize: try row.decode(column: "closure_size", as: Int64?.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)),
            startedAt: try row.decode(column: "started_at", as: Int64?.self).map(Date.init(unixMilliseconds:)),
            finishedAt: try row.decode(column: "finished_at", as: Int64?.self).map(Date.init(unixMilliseconds:)),
            createdBy: try row.decode(column: "created_by", as: String?.self),
            activationID: try row.decode(column: "activation_id", as: String?.self),
            activation: JSONColumn.lenientlyDecode(
                ActivationSettings.self, from: try row.decode(column: "activation", as: String?.self)),
            checkResults: JSONColumn.lenientlyDecode(
                [CheckResult].self, from: try row.decode(column: "check_results", as: String?.self)))
    }
}
