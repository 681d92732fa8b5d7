import Foundation
import NixCore
import SQLKit

extension CapstanStore {
    /// Registers an agent; a name taken in the workspace throws `StorageError.duplicate(what: "agent", name:)`.
    public func insertAgent(_ record: AgentRecord) async throws {
        let inserted = try await describingFailure(
            "creating agent '\(record.name)' in workspace \(record.workspaceID)"
        ) {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO agents (id, workspace_id, name, cache_id, system, version, current_store_path,
                                        last_seen, created_at)
                    VALUES (\(bind: record.id), \(bind: record.workspaceID), \(bind: record.name),
                            \(bind: record.cacheID), \(bind: record.system), \(bind: record.version),
                            \(bind: record.currentStorePath?.path), \(bind: record.lastSeen?.unixMilliseconds),
                            \(bind: record.createdAt.unixMilliseconds))
                    ON CONFLICT (workspace_id, name) DO NOTHING
                    RETURNING id
                    """
                ).first() != nil
            }
        }
        guard inserted else { throw StorageError.duplicate(what: "agent", name: record.name) }
    }

    public func agent(id: String) async throws -> AgentRecord? {
        try await describingFailure("looking up agent \(id)") {
            try await sql.raw("SELECT \(unsafeRaw: Self.agentColumns) FROM agents WHERE id = \(bind: id)")
                .first().map(AgentRecord.init(row:))
        }
    }

    public func agent(workspaceID: String, name: String) async throws -> AgentRecord? {
        try await describingFailure("looking up agent '\(name)' in workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.agentColumns) FROM agents
                WHERE workspace_id = \(bind: workspaceID) AND name = \(bind: name)
                """
            ).first().map(AgentRecord.init(row:))
        }
    }

    /// The agents of a workspace, by name.
    public func agents(workspaceID: String) async throws -> [AgentRecord] {
        try await describingFailure("listing agents of workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.agentColumns) FROM agents WHERE workspace_id = \(bind: workspaceID)
                ORDER BY name
                """
            ).all().map(AgentRecord.init(row:))
        }
    }

    /// The agents of a workspace with these names (those that exist), keyed by name: one query per 500
    /// names instead of one per name, for deploy.json files naming many agents.
    public func agents(workspaceID: String, names: [String]) async throws -> [String: AgentRecord] {
        var found: [String: AgentRecord] = [:]
        for chunk in keySlices(names) {
            try await describingFailure("looking up \(chunk.count) agents by name in workspace \(workspaceID)") {
                for row in try await sql.raw(
                    """
                    SELECT \(unsafeRaw: Self.agentColumns) FROM agents
                    WHERE workspace_id = \(bind: workspaceID) AND \(keyMatch("name", chunk))
                    """
                ).all() {
                    let agent = try AgentRecord(row: row)
                    found[agent.name] = agent
                }
            }
        }
        return found
    }

    /// The agents with these IDs (those that exist), keyed by ID; one query per 500 IDs.
    public func agents(ids: [String]) async throws -> [String: AgentRecord] {
        var found: [String: AgentRecord] = [:]
        for chunk in keySlices(ids) {
            try await describingFailure("looking up \(chunk.count) agents by ID") {
                for row in try await sql.raw(
                    "SELECT \(unsafeRaw: Self.agentColumns) FROM agents WHERE \(keyMatch("id", chunk))"
                ).all() {
                    let agent = try AgentRecord(row: row)
                    found[agent.id] = agent
                }
            }
        }
        return found
    }

    /// Distinct keys for `keyMatch`, in slices: all at once on PostgreSQL, where they go as one array
    /// parameter, so 10,000 agents take one statement, planned once; slices of `size` on SQLite.
    func keySlices(_ keys: [String], size: Int = 500) -> [[String]] {
        Self.keySlices(keys, backend: database.backend, size: size)
    }

    static func keySlices(_ keys: [String], backend: DatabaseBackend, size: Int = 500) -> [[String]] {
        guard backend == .postgres else { return chunks(of: keys, size: size) }
        let unique = Array(Set(keys)).sorted()
        return unique.isEmpty ? [] : [unique]
    }

    /// `column` is one of `keys`: `= ANY($1)`, one array parameter, on PostgreSQL; `IN (?, …)` on SQLite.
    func keyMatch(_ column: String, _ keys: [String]) -> SQLQueryString {
        Self.keyMatch(column, keys, backend: database.backend)
    }

    static func keyMatch(_ column: String, _ keys: [String], backend: DatabaseBackend) -> SQLQueryString {
        if backend == .postgres { return "\(unsafeRaw: column) = ANY(\(bind: keys))" }
        let binds: [any Encodable & Sendable] = keys
        return "\(unsafeRaw: column) IN (\(binds: binds))"
    }

    /// Distinct keys in slices small enough for one statement's bind parameters on either backend.
    static func chunks(of keys: [String], size: Int = 500) -> [[String]] {
        let unique = Array(Set(keys)).sorted()
        return stride(from: 0, to: unique.count, by: size).map { Array(unique[$0..<min($0 + size, unique.count)]) }
    }

    /// Records what a connecting agent reports about itself. `system` and `version` are stored as given;
    /// a nil `currentStorePath` keeps the stored one, since an agent may not know its profile yet.
    /// Throws `StorageError.notFound` for an unknown agent.
    public func recordAgentSeen(
        id: String, system: String?, version: String?, currentStorePath: StorePath?, at date: Date
    ) async throws {
        let updated = try await describingFailure("recording that agent \(id) was seen") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE agents SET system = \(bind: system), version = \(bind: version),
                        current_store_path = COALESCE(\(bind: currentStorePath?.path), current_store_path),
                        last_seen = \(bind: date.unixMilliseconds)
                    WHERE id = \(bind: id)
                    RETURNING id
                    """
                ).first() != nil
            }
        }
        guard updated else { throw StorageError.notFound(what: "agent", key: id) }
    }

    /// Records that the agents were seen at `date` (connected to this replica): one transaction,
    /// one statement per 500 agents, whatever the size of the fleet. Unknown IDs are ignored. On
    /// PostgreSQL an agent whose row another transaction holds (an activation locks its agents) is
    /// skipped rather than waited for: the heartbeat never delays an activation nor deadlocks with
    /// one, and the skipped agents are recorded at the next beat.
    public func recordAgentsSeen(ids: [String], at date: Date) async throws {
        guard !ids.isEmpty else { return }
        let postgres = database.backend == .postgres
        try await describingFailure("recording that \(ids.count) agents were seen") {
            try await database.transaction { db in
                for chunk in Self.chunks(of: ids.sorted()) {
                    let binds: [any Encodable & Sendable] = chunk
                    let rows: SQLQueryString =
                        postgres
                        ? "SELECT id FROM agents WHERE id IN (\(binds: binds)) ORDER BY id FOR UPDATE SKIP LOCKED"
                        : "\(binds: binds)"
                    try await db.raw(
                        "UPDATE agents SET last_seen = \(bind: date.unixMilliseconds) WHERE id IN (\(rows))"
                    ).run()
                }
            }
        }
    }

    /// Records the store path an agent now runs (after a deployment or a rollback); nil when unknown.
    /// Throws `StorageError.notFound` for an unknown agent.
    public func setAgentCurrentStorePath(id: String, storePath: StorePath?) async throws {
        let updated = try await describingFailure("setting the current store path of agent \(id)") {
            try await database.transaction { db in
                try await db.raw(
                    "UPDATE agents SET current_store_path = \(bind: storePath?.path) WHERE id = \(bind: id) RETURNING id"
                ).first() != nil
            }
        }
        guard updated else { throw StorageError.notFound(what: "agent", key: id) }
    }

    /// Records whether the agent's machine must reboot to run its deployed configuration (nil: unknown).
    /// Throws `StorageError.notFound` for an unknown agent.
    public func setAgentNeedsReboot(id: String, needsReboot: Bool?) async throws {
        let updated = try await describingFailure("recording whether agent \(id) needs a reboot") {
            try await database.transaction { db in
                try await db.raw(
                    "UPDATE agents SET needs_reboot = \(bind: needsReboot) WHERE id = \(bind: id) RETURNING id"
                ).first() != nil
            }
        }
        guard updated else { throw StorageError.notFound(what: "agent", key: id) }
    }

    static let agentColumns =
        "id, workspace_id, name, cache_id, system, version, current_store_path, last_seen, needs_reboot, created_at"
}

extension AgentRecord {
    init(row: any SQLRow) throws {
        let id = try row.decode(column: "id", as: String.self)
        self.init(
            id: id,
            workspaceID: try row.decode(column: "workspace_id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            cacheID: try row.decode(column: "cache_id", as: String?.self),
            system: try row.decode(column: "system", as: String?.self),
            version: try row.decode(column: "version", as: String?.self),
            currentStorePath: try row.decodeStorePathIfPresent(column: "current_store_path", table: "agents", key: id),
            lastSeen: try row.decode(column: "last_seen", as: Int64?.self).map(Date.init(unixMilliseconds:)),
            needsReboot: try row.decode(column: "needs_reboot", as: Bool?.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)))
    }
}
