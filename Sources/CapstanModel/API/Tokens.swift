import Foundation

/// What a token may do. Each kind is scoped: `push`/`read` to one cache, `agent` to one agent,
/// `activate` and `admin` to their workspace.
public enum TokenKind: String, Codable, Sendable, CaseIterable {
    case admin
    case push
    case read
    case activate
    case agent
}

public struct CreateTokenRequest: Codable, Sendable {
    public var kind: TokenKind
    public var cache: String?
    public var agent: String?
    public var label: String?

    public init(kind: TokenKind, cache: String? = nil, agent: String? = nil, label: String? = nil) {
        self.kind = kind
        self.cache = cache
        self.agent = agent
        self.label = label
    }
}

public struct TokenInfo: Codable, Sendable, Equatable {
    public var id: String
    public var kind: TokenKind
    public var cache: String?
    public var agent: String?
    public var label: String?
    public var createdAt: Date
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(
        id: String, kind: TokenKind, cache: String?, agent: String?, label: String?, createdAt: Date,
        lastUsedAt: Date? = nil, revokedAt: Date? = nil
    ) {
        self.id = id
        self.kind = kind
        self.cache = cache
        self.agent = agent
        self.label = label
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// Returned once, when a token is created: the secret is never shown again.
public struct CreatedToken: Codable, Sendable {
    public var token: String
    public var info: TokenInfo

    public init(token: String, info: TokenInfo) {
        self.token = token
        self.info = info
    }
}
