import Foundation
import SQLKit

extension CapstanStore {
    public func insertWebhook(_ record: WebhookRecord) async throws {
        try await describingFailure("storing webhook \(record.url) of workspace \(record.workspaceID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO webhooks (id, workspace_id, url, secret, created_at, created_by)
                    VALUES (\(bind: record.id), \(bind: record.workspaceID), \(bind: record.url), \(bind: record.secret),
                            \(bind: record.createdAt.unixMilliseconds), \(bind: record.createdBy))
                    """
                ).run()
            }
        }
    }

    /// The webhooks of a workspace, oldest first.
    /// `on` is a connection to use instead of the pool.
    public func webhooks(workspaceID: String, on connection: StoreConnection? = nil) async throws -> [WebhookRecord] {
        let sql = connection?.sql ?? sql
        return try await describingFailure("listing webhooks of workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT id, workspace_id, url, secret, created_at, created_by FROM webhooks
                WHERE workspace_id = \(bind: workspaceID) ORDER BY created_at, id
                """
            ).all().map(WebhookRecord.init(row:))
        }
    }

    public func webhook(id: String) async throws -> WebhookRecord? {
        try await describingFailure("looking up webhook \(id)") {
            try await sql.raw(
                "SELECT id, workspace_id, url, secret, created_at, created_by FROM webhooks WHERE id = \(bind: id)"
            ).first().map(WebhookRecord.init(row:))
        }
    }

    /// Removes a webhook of `workspaceID` and its deliveries; false when that workspace has no such webhook.
    public func deleteWebhook(id: String, workspaceID: String) async throws -> Bool {
        try await describingFailure("removing webhook \(id) of workspace \(workspaceID)") {
            try await database.transaction { db in
                try await db.raw("DELETE FROM webhook_deliveries WHERE webhook_id = \(bind: id)").run()
                return try await db.raw(
                    """
                    DELETE FROM webhooks WHERE id = \(bind: id) AND workspace_id = \(bind: workspaceID) RETURNING id
                    """
                ).first() != nil
            }
        }
    }

    public func insertWebhookDelivery(_ record: WebhookDeliveryRecord) async throws {
        try await describingFailure("recording delivery attempt \(record.attempt) to webhook \(record.webhookID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO webhook_deliveries (id, webhook_id, deployment_id, event, attempt, time, status_code,
                                                    error, delivered)
                    VALUES (\(bind: record.id), \(bind: record.webhookID), \(bind: record.deploymentID),
                            \(bind: record.event), \(bind: record.attempt), \(bind: record.time.unixMilliseconds),
                            \(bind: record.statusCode), \(bind: record.error), \(bind: record.delivered))
                    """
                ).run()
            }
        }
    }

    /// Delivery attempts to the webhooks of a workspace (or one of them), newest first.
    public func webhookDeliveries(workspaceID: String, webhookID: String? = nil, limit: Int = 100) async throws
        -> [WebhookDeliveryRecord]
    {
        var query: SQLQueryString = """
            SELECT d.id, d.webhook_id, d.deployment_id, d.event, d.attempt, d.time, d.status_code, d.error, d.delivered
            FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
            WHERE w.workspace_id = \(bind: workspaceID)
            """
        if let webhookID { query += " AND d.webhook_id = \(bind: webhookID)" }
        query += " ORDER BY d.time DESC, d.attempt DESC LIMIT \(literal: max(0, limit))"
        return try await describingFailure("listing webhook deliveries of workspace \(workspaceID)") {
            try await sql.raw(query).all().map { row in
                WebhookDeliveryRecord(
                    id: try row.decode(column: "id", as: String.self),
                    webhookID: try row.decode(column: "webhook_id", as: String.self),
                    deploymentID: try row.decode(column: "deployment_id", as: String.self),
                    event: try row.decode(column: "event", as: String.self),
                    attempt: try row.decode(column: "attempt", as: Int.self),
                    time: Date(unixMilliseconds: try row.decode(column: "time", as: Int64.self)),
                    statusCode: try row.decode(column: "status_code", as: Int?.self),
                    error: try row.decode(column: "error", as: String?.self),
                    delivered: try row.decode(column: "delivered", as: Bool.self))
            }
        }
    }
}

extension WebhookRecord {
    init(row: any SQLRow) throws {
        self.init(
            id: try row.decode(column: "id", as: String.self),
            workspaceID: try row.decode(column: "workspace_id", as: String.self),
            url: try row.decode(column: "url", as: String.self),
            secret: try row.decode(column: "secret", as: String?.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)),
            createdBy: try row.decode(column: "created_by", as: String?.self))
    }
}
