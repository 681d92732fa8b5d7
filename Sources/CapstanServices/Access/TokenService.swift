import CapstanModel
import CapstanStorage
import Foundation
import Logging

/// Creates, lists, revokes and checks tokens. Secrets are returned once and stored hashed.
public struct TokenService: Sendable {
    let store: CapstanStore
    let logger: Logger
    let principals = PrincipalMemo()
    let audit: AuditLog
    /// Where a revocation is announced to every replica (and to this one's open connections).
    let events: EventBus?

    public init(store: CapstanStore, logger: Logger, events: EventBus? = nil) {
        self.store = store
        self.logger = logger
        self.events = events
        audit = AuditLog(store: store, logger: logger)
    }

    /// A token revoked anywhere: this replica stops trusting what it remembered of it.
    public func revoked(tokenID: String) {
        principals.forget(tokenID: tokenID)
    }

    /// Resolves a presented secret to its principal; unknown and revoked tokens are refused.
    public func authenticate(secret: String) async throws -> Principal {
        let secretHash = TokenSecret.hash(secret)
        if let principal = principals.principal(secretHash: secretHash) { return principal }
        guard let record = try await store.token(secretHash: secretHash) else {
            throw ServiceError.unauthorized(
                "the token is not known to this server; create one with `capstan token create`")
        }
        if record.revokedAt != nil {
            throw ServiceError.unauthorized("the token \(record.id) was revoked")
        }
        let principal = Principal(token: record)
        principals.remember(principal, secretHash: secretHash)
        return principal
    }

    /// The principal of `secret` when this server validated it recently and has seen no revocation
    /// since (what `authenticate` answers without the database); nil when only the database can tell.
    public func rememberedPrincipal(secret: String) -> Principal? {
        rememberedPrincipal(secretHash: TokenSecret.hash(secret))
    }

    /// The same for a secret already hashed (`TokenSecret.hash`): a connection that sends the same
    /// token with every request hashes it once, and each request still asks the memo, so a
    /// revocation is seen at once.
    public func rememberedPrincipal(secretHash: String) -> Principal? {
        principals.principal(secretHash: secretHash)
    }

    /// Creates a token in the caller's workspace; only admins may.
    public func create(_ request: CreateTokenRequest, by principal: Principal) async throws -> CreatedToken {
        try AccessPolicy.require(.manageTokens, by: principal)
        var cacheID: String?
        switch request.kind {
        case .push, .read:
            guard let cacheName = request.cache else {
                throw ServiceError.badRequest("a \(request.kind.rawValue) token needs a cache: pass --cache NAME")
            }
            guard let cache = try await store.cache(named: cacheName, workspaceID: principal.workspaceID) else {
                throw ServiceError.notFound("cache '\(cacheName)' does not exist in this workspace")
            }
            cacheID = cache.id
        case .admin, .activate:
            if let cacheName = request.cache {
                throw ServiceError.badRequest(
                    "a \(request.kind.rawValue) token is scoped to the workspace, not to cache '\(cacheName)'; drop --cache"
                )
            }
        case .agent:
            throw ServiceError.badRequest("agent tokens are created with the agent: use `capstan agent create NAME`")
        }
        let created = try await issue(
            kind: request.kind, workspaceID: principal.workspaceID, cacheID: cacheID, agentID: nil,
            label: request.label)
        await audit.record(
            .tokenCreated, by: principal, target: created.info.id,
            detail: "\(request.kind.rawValue) token" + (request.label.map { " '\($0)'" } ?? "")
                + (request.cache.map { " for cache \($0)" } ?? ""))
        return created
    }

    /// Stores a new token and returns its secret, the only time it is visible.
    public func issue(
        kind: TokenKind, workspaceID: String, cacheID: String?, agentID: String?, label: String?,
        secret given: String? = nil
    ) async throws -> CreatedToken {
        let secret = given ?? TokenSecret.generate(kind: kind)
        let record = TokenRecord(
            id: UUID().uuidString.lowercased(), workspaceID: workspaceID, kind: kind, cacheID: cacheID,
            agentID: agentID, label: label, createdAt: Date(), lastUsedAt: nil, revokedAt: nil)
        try await store.insertToken(record, secretHash: TokenSecret.hash(secret))
        logger.info(
            "token created",
            metadata: ["token": "\(record.id)", "kind": "\(kind.rawValue)", "label": "\(label ?? "")"])
        return CreatedToken(token: secret, info: try await info(record))
    }

    public func list(by principal: Principal) async throws -> [TokenInfo] {
        try AccessPolicy.require(.manageTokens, by: principal)
        var result: [TokenInfo] = []
        for record in try await store.tokens(workspaceID: principal.workspaceID) {
            result.append(try await info(record))
        }
        return result
    }

    public func revoke(id: String, by principal: Principal) async throws {
        try AccessPolicy.require(.manageTokens, by: principal)
        guard try await store.revokeToken(id: id, workspaceID: principal.workspaceID) else {
            throw ServiceError.notFound("token \(id) does not exist in this workspace")
        }
        principals.forget(tokenID: id)
        await events?.publish(.tokenRevoked(tokenID: id))
        logger.info("token revoked", metadata: ["token": "\(id)", "by": "\(principal.tokenID)"])
        await audit.record(.tokenRevoked, by: principal, target: id)
    }

    private func info(_ record: TokenRecord) async throws -> TokenInfo {
        var cacheName: String?
        if let cacheID = record.cacheID { cacheName = try await store.cache(id: cacheID)?.name }
        return TokenInfo(
            id: record.id, kind: record.kind, cache: cacheName, agent: nil, label: record.label,
            createdAt: record.createdAt, lastUsedAt: record.lastUsedAt, revokedAt: record.revokedAt)
    }
}
