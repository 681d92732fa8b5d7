import Foundation
import SQLKit

extension CapstanStore {
    public func insertAuditEvent(_ event: AuditEventRecord) async throws {
        try await describingFailure("recording audit event \(event.action) in workspace \(event.workspaceID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO audit_events (id, workspace_id, time, actor, actor_token_id, action, target, detail)
                    VALUES (\(bind: event.id), \(bind: event.workspaceID), \(bind: event.time.unixMilliseconds),
                            \(bind: event.actor), \(bind: event.actorTokenID), \(bind: event.action),
                            \(bind: event.target), \(bind: event.detail))
                    """
                ).run()
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
}
