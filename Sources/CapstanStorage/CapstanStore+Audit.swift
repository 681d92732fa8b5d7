import Foundation
import SQLKit

extension CapstanStore {
    public func insertAuditEvent(_ event: AuditEventRecord) async throws {
        try await insertAuditEvents([event])
    }

    /// Records many events in one transaction, 500 rows a statement: an activation of a deploy.json
    /// for thousands of agents records one event per deployment.
    public func insertAuditEvents(_ events: [AuditEventRecord]) async throws {
        guard let first = events.first else { return }
        let what =
            events.count == 1
            ? "recording audit event \(first.action) in workspace \(first.workspaceID)"
            : "recording \(events.count) audit events in workspace \(first.workspaceID)"
        try await describingFailure(what) {
            try await database.transaction { db in
                for start in stride(from: 0, to: events.count, by: 500) {
                    var values: SQLQueryString = ""
                    for (offset, event) in events[start..<min(start + 500, events.count)].enumerated() {
                        if offset > 0 { values += ", " }
                        values += """
                            (\(bind: event.id), \(bind: event.workspaceID), \(bind: event.time.unixMilliseconds),
                             \(bind: event.actor), \(bind: event.actorTokenID), \(bind: event.action),
                             \(bind: event.target), \(bind: event.detail))
                            """
                    }
                    try await db.raw(
                        """
                        INSERT INTO audit_events (id, workspace_id, time, actor, actor_token_id, action, target, detail)
                        VALUES \(values)
                        """
                    ).run()
                }
            }
        }
    }

    /// The newest events of a workspace first.
    public func auditEvents(workspaceID: String, limit: Int = 100) async throws -> [AuditEventRecord] {
        try await describingFailure("listing audit events of workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT id, workspace_id, time, actor, actor_token_id, action, target, detail FROM audit_events
                WHERE workspace_id = \(bind: workspaceID)
                ORDER BY time DESC, id LIMIT \(literal: max(0, limit))
                """
            ).all().map { row in
                AuditEventRecord(
                    id: try row.decode(column: "id", as: String.self),
                    workspaceID: try row.decode(column: "workspace_id", as: String.self),
                    time: Date(unixMilliseconds: try row.decode(column: "time", as: Int64.self)),
                    actor: try row.decode(column: "actor", as: String?.self),
                    actorTokenID: try row.decode(column: "actor_token_id", as: String?.self),
                    action: try row.decode(column: "action", as: String.self),
                    target: try row.decode(column: "target", as: String?.self),
                    detail: try row.decode(column: "detail", as: String?.self))
            }
        }
    }

    /// How many events of `action` on `target` were recorded since `since` (the time the server recorded them).
    public func auditEventCount(workspaceID: String, action: String, target: String, since: Date) async throws -> Int {
        try await describingFailure("counting audit events \(action) of \(target) in workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT COUNT(*) AS n FROM audit_events
                WHERE workspace_id = \(bind: workspaceID) AND action = \(bind: action) AND target = \(bind: target)
                  AND time >= \(bind: since.unixMilliseconds)
                """
            ).first()?.decode(column: "n", as: Int.self) ?? 0
        }
    }

    /// Whether an event of `action` on `target` has a detail starting with `prefix`, which holds no
    /// LIKE wildcard (`%`, `_`) and no backslash.
    public func hasAuditEvent(workspaceID: String, action: String, target: String, detailPrefix prefix: String)
        async throws -> Bool
    {
        precondition(!prefix.contains { "%_\\".contains($0) }, "a LIKE wildcard in an audit detail prefix")
        return try await describingFailure("looking up audit events \(action) of \(target) in workspace \(workspaceID)")
        {
            try await sql.raw(
                """
                SELECT id FROM audit_events
                WHERE workspace_id = \(bind: workspaceID) AND action = \(bind: action) AND target = \(bind: target)
                  AND detail LIKE \(bind: prefix + "%") LIMIT 1
                """
            ).first() != nil
        }
    }
}
