import CapstanModel
import CapstanStorage
import Foundation

/// Who is making a request: the token that authenticated it and what that token is scoped to.
public struct Principal: Sendable {
    public var tokenID: String
    public var workspaceID: String
    public var kind: TokenKind
    public var cacheID: String?
    public var agentID: String?
    public var label: String?
    /// When the credential stops being valid by itself (a dashboard session); nil for tokens,
    /// which last until revoked. What a principal holds open ends then.
    public var expiresAt: Date?

    public init(token: TokenRecord) {
        tokenID = token.id
        workspaceID = token.workspaceID
        kind = token.kind
        cacheID = token.cacheID
        agentID = token.agentID
        label = token.label
    }
}
