import Foundation
import SQLKit

/// A signed-in dashboard browser: the token it signed in with, until when.
public struct DashboardSessionRecord: Sendable, Equatable {
    public var tokenID: String
    public var createdAt: Date
    public var expiresAt: Date

    public init(tokenID: String, createdAt: Date, expiresAt: Date) {
        self.tokenID = tokenID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

extension CapstanStore {
    /// Stores a session under the hash of its cookie secret (the secret itself is never kept).
    public func insertDashboardSession(secretHash: String, _ session: DashboardSessionRecord) async throws {
        try await describingFailure("storing a dashboard session for token \(session.tokenID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO dashboard_sessions (secret_hash, token_id, created_at, expires_at)
                    VALUES (\(bind: secretHash), \(bind: session.tokenID), \(bind: session.createdAt.unixMilliseconds),
                            \(bind: session.expiresAt.unixMilliseconds))
                    """
                ).run()
                // Expired sessions are swept on each sign-in; nothing else needs them.
                try await db.raw(
                    "DELETE FROM dashboard_sessions WHERE expires_at < \(bind: session.createdAt.unixMilliseconds)"
                ).run()
            }
        }
    }

    public func dashboardSession(secretHash: String) async throws -> DashboardSessionRecord? {
        try await describingFailure("looking up a dashboard session") {
            try await sql.raw(
                """
                SELECT token_id, created_at, expires_at FROM dashboard_sessions WHERE secret_hash = \(bind: secretHash)
                """
            ).first().map { row in
                DashboardSessionRecord(
                    tokenID: try row.decode(column: "token_id", as: String.self),
                    createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)),
                    expiresAt: Date(unixMilliseconds: try row.decode(column: "expires_at", as: Int64.self)))
            }
        }
    }

    public func deleteDashboardSession(secretHash: String) async throws {
        try await describingFailure("ending a dashboard session") {
            try await database.transaction { db in
                try await db.raw("DELETE FROM dashboard_sessions WHERE secret_hash = \(bind: secretHash)").run()
            }
        }
    }

    /// A token by id (for sessions, which refer to the token they were opened with).
    public func token(id: String) async throws -> TokenRecord? {
        try await describingFailure("looking up token \(id)") {
            try await sql.raw("SELECT \(unsafeRaw: Self.tokenColumns) FROM tokens WHERE id = \(bind: id)")
                .first().map(TokenRecord.init(row:))
        }
    }
}
