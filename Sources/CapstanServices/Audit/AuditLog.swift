import CapstanModel
import CapstanStorage
import Foundation
import Logging

/// What the audit log records. The raw values are what the API and `capstan audit` show.
public enum AuditAction: String, Sendable {
    case activate = "deployment.activate"
    case cancel = "deployment.cancel"
    case retry = "deployment.retry"
    case rollback = "agent.rollback"
    case rolloutPaused = "rollout.pause"
    case rolloutResumed = "rollout.resume"
    case rolloutAborted = "rollout.abort"
    case agentCreated = "agent.create"
    case tokenCreated = "token.create"
    case tokenRevoked = "token.revoke"
    case cacheCreated = "cache.create"
    case cacheConfigured = "cache.configure"
    case cacheCollected = "cache.gc"
    case cachePathsRemoved = "cache.rm"
    case cacheVerified = "cache.verify"
    case webhookAdded = "webhook.add"
    case webhookRemoved = "webhook.remove"
    /// Done on an agent's machine without the server (`capstan deploy local`), reported by its agent.
    case localAction = "agent.local"
}

/// Records who did what in a workspace. Services call it after an action has taken effect; a
/// failure to record is logged loudly but does not undo the action, which already happened.
public struct AuditLog: Sendable {
    let store: CapstanStore
    let logger: Logger

    public init(store: CapstanStore, logger: Logger) {
        self.store = store
        self.logger = logger
    }

    public func record(_ action: AuditAction, by principal: Principal, target: String?, detail: String? = nil) async {
        await record(action, by: principal, targets: [(target, detail)])
    }

    /// One event per target, recorded together (an activation records one per deployment).
    public func record(
        _ action: AuditAction, by principal: Principal, targets: [(target: String?, detail: String?)]
    ) async {
        await record(
            action, workspaceID: principal.workspaceID, actor: Self.actor(principal), actorTokenID: principal.tokenID,
            targets: targets)
    }

    private static func actor(_ principal: Principal) -> String {
        principal.label ?? "\(principal.kind.rawValue) token"
    }

    /// The event `principal` doing `action` at `time`, without a target: for the storage layer to record
    /// once per row it writes, in the same transaction (an activation's deployments).
    public func event(_ action: AuditAction, by principal: Principal, at time: Date = Date()) -> AuditEventRecord {
        AuditEventRecord(
            workspaceID: principal.workspaceID, time: time, actor: Self.actor(principal),
            actorTokenID: principal.tokenID, action: action.rawValue, target: nil, detail: nil)
    }

    /// An event whose actor is not the principal of a request (what an agent reports was done on its machine).
    public func record(
        _ action: AuditAction, workspaceID: String, actor: String, actorTokenID: String?, target: String?,
        detail: String?, at time: Date = Date()
    ) async {
        await record(
            action, workspaceID: workspaceID, actor: actor, actorTokenID: actorTokenID, targets: [(target, detail)],
            at: time)
    }

    private func record(
        _ action: AuditAction, workspaceID: String, actor: String, actorTokenID: String?,
        targets: [(target: String?, detail: String?)], at time: Date = Date()
    ) async {
        let events = targets.map {
            AuditEventRecord(
                workspaceID: workspaceID, time: time, actor: actor, actorTokenID: actorTokenID, action: action.rawValue,
                target: $0.target, detail: $0.detail)
        }
        do {
            try await store.insertAuditEvents(events)
        } catch {
            let target = targets.count == 1 ? targets[0].target ?? "" : "\(targets.count) targets"
            logger.error(
                "could not record an audit event",
                metadata: ["action": "\(action.rawValue)", "target": "\(target)", "error": "\(error)"])
        }
    }

    /// The workspace's newest events first; admins only.
    public func events(limit: Int, by principal: Principal) async throws -> [AuditEvent] {
        try AccessPolicy.require(.readAudit, by: principal)
        return try await store.auditEvents(workspaceID: principal.workspaceID, limit: max(1, min(limit, 1000))).map {
            AuditEvent(
                id: $0.id, time: $0.time, actor: $0.actor, actorTokenID: $0.actorTokenID, action: $0.action,
                target: $0.target, detail: $0.detail)
        }
    }
}
