import CapstanModel
import Foundation

/// A token as stored: everything but the secret, of which only a SHA-256 is kept (in `secret_hash`).
public struct TokenRecord: Sendable, Equatable, Hashable {
    public var id: String
    public var workspaceID: String
    public var kind: TokenKind
    /// The cache a `push` or `read` token is limited to.
    public var cacheID: String?
    /// The agent an `agent` token belongs to.
    public var agentID: String?
    public var label: String?
    public var createdAt: Date
    public var lastUsedAt: Date?
    /// Set once the token was revoked; a revoked token is still found so callers can say so.
    public var revokedAt: Date?

    public init(
        id: String, workspaceID: String, kind: TokenKind, cacheID: String? = nil, agentID: String? = nil,
        label: String? = nil, createdAt: Date, lastUsedAt: Date? = nil, revokedAt: Date? = nil
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.kind = kind
        self.cacheID = cacheID
        self.agentID = agentID
        self.label = label
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }

    public var isRevoked: Bool { revokedAt != nil }
}
