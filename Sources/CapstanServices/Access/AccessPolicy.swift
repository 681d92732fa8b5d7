import CapstanModel
import CapstanStorage

/// Something a principal may want to do. Every permission decision of the server is one of these,
/// answered by `AccessPolicy` alone.
public enum Action: Sendable, Equatable {
    /// Create caches in the workspace.
    case createCache
    /// Read a cache's paths (public caches are open to everyone, even without a token).
    case readCache(CacheRecord)
    /// Upload paths into a cache.
    case writeCache(CacheRecord)
    /// Change what a cache keeps, collect its garbage, remove and verify its paths.
    case manageCache(CacheRecord)
    /// Add agents to the workspace.
    case manageAgents
    /// Create, list and revoke tokens.
    case manageTokens
    /// Sign in to the dashboard.
    case signIn
    case readAudit
    case manageWebhooks
    /// Create workspaces: only admins of the server's operator workspace.
    case createWorkspace(homeWorkspace: String, operatorWorkspace: String)
    /// Start deployments from a deploy.json.
    case activate
    /// Read deployments, agents and logs.
    case readDeployments
    /// Cancel, retry, roll back.
    case changeDeployments
    /// Act as an agent: open the agent channel, report progress. Only that agent's own token.
    case actAsAgent
}

/// How much a principal may do with a cache, as the cachix API reports it.
public enum CachePermission: String, Sendable {
    case admin = "Admin"
    case write = "Write"
    case read = "Read"
}

/// Every permission check of Capstan, in one place: which token kind may do what, in which
/// workspace. Services ask it before they act; routes never decide permissions themselves.
public enum AccessPolicy {
    /// Whether `principal` may perform `action`. Workspace boundaries are part of the answer:
    /// a cache of another workspace is never readable or writable, public or not, except reading
    /// a public cache.
    public static func allows(_ principal: Principal, _ action: Action) -> Bool {
        switch action {
        case .createCache, .manageAgents, .manageTokens, .readAudit, .manageWebhooks:
            return principal.kind == .admin
        case .createWorkspace(let home, let operatorWorkspace):
            return principal.kind == .admin && home == operatorWorkspace
        case .signIn, .activate, .readDeployments, .changeDeployments:
            return principal.kind == .admin || principal.kind == .activate
        case .actAsAgent:
            return principal.kind == .agent && principal.agentID != nil
        case .readCache(let cache):
            if cache.isPublic { return true }
            guard principal.workspaceID == cache.workspaceID else { return false }
            switch principal.kind {
            case .admin, .agent: return true
            case .push, .read: return principal.cacheID == cache.id
            case .activate: return false
            }
        case .manageCache(let cache):
            return principal.kind == .admin && principal.workspaceID == cache.workspaceID
        case .writeCache(let cache):
            guard principal.workspaceID == cache.workspaceID else { return false }
            switch principal.kind {
            case .admin: return true
            case .push: return principal.cacheID == cache.id
            case .read, .activate, .agent: return false
            }
        }
    }

    /// Throws `forbidden`, naming what the action needs, unless the principal may perform it.
    public static func require(_ action: Action, by principal: Principal) throws(ServiceError) {
        guard !allows(principal, action) else { return }
        throw ServiceError.forbidden(refusal(action, principal))
    }

    /// Anonymous callers may read public caches; for a private cache they are asked to authenticate,
    /// and callers of other workspaces learn nothing, not even that it exists.
    public static func requireRead(_ cache: CacheRecord, by principal: Principal?) throws(ServiceError) {
        if cache.isPublic { return }
        guard let principal else {
            throw ServiceError.unauthorized(
                "cache '\(cache.name)' is private: send a token (Bearer, or as the netrc password)")
        }
        guard allows(principal, .readCache(cache)) else {
            if principal.workspaceID != cache.workspaceID {
                throw ServiceError.notFound("cache '\(cache.name)' does not exist")
            }
            throw ServiceError.forbidden(refusal(.readCache(cache), principal))
        }
    }

    public static func requireWrite(_ cache: CacheRecord, by principal: Principal?) throws(ServiceError) {
        guard let principal else {
            throw ServiceError.unauthorized("writing to cache '\(cache.name)' needs a push token")
        }
        guard allows(principal, .writeCache(cache)) else {
            if principal.workspaceID != cache.workspaceID && !cache.isPublic {
                throw ServiceError.notFound("cache '\(cache.name)' does not exist")
            }
            throw ServiceError.forbidden(refusal(.writeCache(cache), principal))
        }
    }

    /// What the cachix API reports as the caller's permission on a cache it can read.
    public static func permission(on cache: CacheRecord, by principal: Principal?) -> CachePermission {
        guard let principal else { return .read }
        if principal.kind == .admin && principal.workspaceID == cache.workspaceID { return .admin }
        return allows(principal, .writeCache(cache)) ? .write : .read
    }

    static func refusal(_ action: Action, _ principal: Principal) -> String {
        let kind = principal.kind.rawValue
        switch action {
        case .createCache: return "creating a cache needs an admin token; this one is a \(kind) token"
        case .manageAgents: return "adding an agent needs an admin token; this one is a \(kind) token"
        case .manageTokens: return "managing tokens needs an admin token; this one is a \(kind) token"
        case .readAudit: return "reading the audit log needs an admin token; this one is a \(kind) token"
        case .manageWebhooks: return "managing webhooks needs an admin token; this one is a \(kind) token"
        case .createWorkspace(_, let operatorWorkspace):
            return "creating workspaces needs an admin token of the '\(operatorWorkspace)' workspace"
        case .signIn: return "the dashboard needs an admin or activate token; this one is a \(kind) token"
        case .activate:
            return "activating a deployment needs an activate token (capstan token create --kind activate); "
                + "this one is a \(kind) token"
        case .readDeployments: return "reading deployments needs an admin or activate token"
        case .changeDeployments: return "changing deployments needs an admin or activate token"
        case .actAsAgent: return "this call needs an agent token; this one is a \(kind) token"
        case .readCache(let cache): return "this \(kind) token may not read cache '\(cache.name)'"
        case .writeCache(let cache):
            return "this \(kind) token may not write to cache '\(cache.name)'; use a push token of that cache"
        case .manageCache(let cache):
            return "managing cache '\(cache.name)' needs an admin token of its workspace; this one is a \(kind) token"
        }
    }
}
