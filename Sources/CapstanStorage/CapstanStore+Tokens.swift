import CapstanModel
import Foundation
import SQLKit

extension CapstanStore {
    /// Stores a new token; `secretHash` is the hex SHA-256 of its secret, the only form the secret is kept in.
    public func insertToken(_ record: TokenRecord, secretHash: String) async throws {
        let inserted = try await describingFailure("storing token \(record.id) of workspace \(record.workspaceID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO tokens (id, workspace_id, kind, cache_id, agent_id, label, secret_hash,
                                        created_at, last_used_at, revoked_at)
                    VALUES (\(bind: record.id), \(bind: record.workspaceID), \(bind: record.kind.rawValue),
                            \(bind: record.cacheID), \(bind: record.agentID), \(bind: record.label),
                            \(bind: secretHash), \(bind: record.createdAt.unixMilliseconds),
                            \(bind: record.lastUsedAt?.unixMilliseconds), \(bind: record.revokedAt?.unixMilliseconds))
                    ON CONFLICT DO NOTHING
                    RETURNING id
                    """
                ).first() != nil
            }
        }
        guard inserted else { throw StorageError.duplicate(what: "token", name: record.id) }
    }

    /// The token whose secret hashes to `secretHash`, revoked or not; nil when there is none.
    public func token(secretHash: String) async throws -> TokenRecord? {
        // The hash is not logged: it identifies a credential.
        try await describingFailure("looking up a token by its secret") {
            try await sql.raw(
                "SELECT \(unsafeRaw: Self.tokenColumns) FROM tokens WHERE secret_hash = \(bind: secretHash)"
            ).first().map(TokenRecord.init(row:))
        }
    }

    /// The tokens of a workspace, oldest first, revoked ones included.
    public func tokens(workspaceID: String) async throws -> [TokenRecord] {
        try await describingFailure("listing tokens of workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.tokenColumns) FROM tokens WHERE workspace_id = \(bind: workspaceID)
                ORDER BY created_at, id
                """
            ).all().map(TokenRecord.init(row:))
        }
    }

    /// Revokes a token of `workspaceID`; false when that workspace has no such token. Revoking twice keeps
    /// the first time.
    @discardableResult
    public func revokeToken(id: String, workspaceID: String, at date: Date = Date()) async throws -> Bool {
        try await describingFailure("revoking token \(id) of workspace \(workspaceID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE tokens SET revoked_at = COALESCE(revoked_at, \(bind: date.unixMilliseconds))
                    WHERE id = \(bind: id) AND workspace_id = \(bind: workspaceID)
                    RETURNING id
                    """
                ).first() != nil
            }
        }
    }

    /// Records that a token was just used.
    public func touchToken(id: String, at date: Date = Date()) async throws {
        try await describingFailure("recording use of token \(id)") {
            try await database.transaction { db in
                try await db.raw(
                    "UPDATE tokens SET last_used_at = \(bind: date.unixMilliseconds) WHERE id = \(bind: id)"
                ).run()
            }
        }
    }

    static let tokenColumns =
        "id, workspace_id, kind, cache_id, agent_id, label, created_at, last_used_at, revoked_at"
}

extension TokenRecord {
    init(row: any SQLRow) throws {
        let id = try row.decode(column: "id", as: String.self)
        let kindText = try row.decode(column: "kind", as: String.self)
        guard let kind = TokenKind(rawValue: kindText) else {
            throw StorageError.invalidRow(table: "tokens", key: id, reason: "unknown token kind '\(kindText)'")
        }
        self.init(
            id: id,
            workspaceID: try row.decode(column: "workspace_id", as: String.self),
            kind: kind,
            cacheID: try row.decode(column: "cache_id", as: String?.self),
            agentID: try row.decode(column: "agent_id", as: String?.self),
            label: try row.decode(column: "label", as: String?.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self).map(Date.init(unixMilliseconds:)),
            revokedAt: try row.decode(column: "revoked_at", as: Int64?.self).map(Date.init(unixMilliseconds:)))
    }
}
