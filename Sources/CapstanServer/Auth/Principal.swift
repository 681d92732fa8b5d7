import CapstanModel
import CapstanStorage

/// Who is making a request: the token that authenticated it and what that token is scoped to.
public struct Principal: Sendable {
    public var tokenID: String
    public var workspaceID: String
    public var kind: TokenKind
    public var cacheID: String?
    public var agentID: String?
    public var label: String?

    public init(token: TokenRecord) {
        tokenID = token.id
        workspaceID = token.workspaceID
        kind = token.kind
        cacheID = token.cacheID
        agentID = token.agentID
        label = token.label
    }

    public var isAdmin: Bool { kind == .admin }

    /// Whether this token may read a cache: public caches are open to all; private ones to the
    /// workspace's admins and agents, and to push/read tokens of that very cache.
    public func canRead(_ cache: CacheRecord) -> Bool {
        guard workspaceID == cache.workspaceID else { return false }
        switch kind {
        case .admin, .agent: return true
        case .push, .read: return cacheID == cache.id
        case .activate: return false
        }
    }

    public func canWrite(_ cache: CacheRecord) -> Bool {
        guard workspaceID == cache.workspaceID else { return false }
        switch kind {
        case .admin: return true
        case .push: return cacheID == cache.id
        case .read, .activate, .agent: return false
        }
    }
}
