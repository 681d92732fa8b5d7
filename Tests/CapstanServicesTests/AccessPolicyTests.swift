import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import Testing

/// Every principal kind × every action × its own workspace or another's: the whole permission
/// matrix, decided by `AccessPolicy` alone.
@Suite("Access policy")
struct AccessPolicyTests {
    static let home = "ws-home"
    static let elsewhere = "ws-other"

    static func principal(_ kind: TokenKind, workspace: String = home, cacheID: String? = nil) -> Principal {
        Principal(
            token: TokenRecord(
                id: UUID().uuidString, workspaceID: workspace, kind: kind,
                cacheID: cacheID ?? (kind == .push || kind == .read ? "cache-1" : nil),
                agentID: kind == .agent ? "agent-1" : nil, createdAt: Date()))
    }

    static func cache(id: String = "cache-1", workspace: String = home, isPublic: Bool) -> CacheRecord {
        CacheRecord(
            id: id, workspaceID: workspace, name: id, isPublic: isPublic, keyName: "k", secretKey: "k:s",
            publicKey: "k:p", compression: "zstd", priority: 41, createdAt: Date())
    }

    /// What each kind may do in its own workspace, on its own cache (cache-1, private).
    static let expected: [TokenKind: Set<String>] = [
        .admin: [
            "createCache", "manageAgents", "manageTokens", "readAudit", "manageWebhooks", "signIn", "activate",
            "readDeployments", "changeDeployments", "readCache", "writeCache", "manageCache", "createWorkspace",
        ],
        .activate: ["signIn", "activate", "readDeployments", "changeDeployments"],
        .push: ["readCache", "writeCache"],
        .read: ["readCache"],
        .agent: ["actAsAgent", "readCache"],
    ]

    static func actions(cache: CacheRecord) -> [(String, Action)] {
        [
            ("createCache", .createCache), ("manageAgents", .manageAgents), ("manageTokens", .manageTokens),
            ("readAudit", .readAudit), ("manageWebhooks", .manageWebhooks), ("signIn", .signIn),
            ("activate", .activate), ("readDeployments", .readDeployments),
            ("changeDeployments", .changeDeployments), ("actAsAgent", .actAsAgent),
            ("readCache", .readCache(cache)), ("writeCache", .writeCache(cache)),
            ("manageCache", .manageCache(cache)),
            ("createWorkspace", .createWorkspace(homeWorkspace: "operators", operatorWorkspace: "operators")),
        ]
    }

    @Test(arguments: TokenKind.allCases)
    func ownWorkspace(kind: TokenKind) {
        let principal = Self.principal(kind)
        for (name, action) in Self.actions(cache: Self.cache(isPublic: false)) {
            let allowed = Self.expected[kind, default: []].contains(name)
            #expect(AccessPolicy.allows(principal, action) == allowed, "\(kind.rawValue) \(name)")
            if allowed {
                #expect(throws: Never.self) { try AccessPolicy.require(action, by: principal) }
            } else {
                let error = #expect(throws: ServiceError.self) { try AccessPolicy.require(action, by: principal) }
                #expect(error?.kind == .forbidden)
            }
        }
    }

    /// A cache of another workspace is neither readable nor writable, whatever the token, and a
    /// private one does not even exist for it.
    @Test(arguments: TokenKind.allCases)
    func otherWorkspacesCaches(kind: TokenKind) {
        let principal = Self.principal(kind, workspace: Self.elsewhere)
        let foreign = Self.cache(isPublic: false)
        #expect(!AccessPolicy.allows(principal, .readCache(foreign)))
        #expect(!AccessPolicy.allows(principal, .writeCache(foreign)))
        #expect(!AccessPolicy.allows(principal, .manageCache(foreign)))
        #expect(
            (#expect(throws: ServiceError.self) { try AccessPolicy.requireRead(foreign, by: principal) })?.kind
                == .notFound)
        #expect(
            (#expect(throws: ServiceError.self) { try AccessPolicy.requireWrite(foreign, by: principal) })?.kind
                == .notFound)
        // Public caches are readable by anyone, writable only from their own workspace.
        let open = Self.cache(isPublic: true)
        #expect(AccessPolicy.allows(principal, .readCache(open)))
        #expect(!AccessPolicy.allows(principal, .writeCache(open)))
        #expect(!AccessPolicy.allows(principal, .manageCache(open)))
        #expect(AccessPolicy.permission(on: open, by: principal) == .read)
    }

    @Test func cacheScopedTokensReachOnlyTheirCache() {
        let other = Self.cache(id: "cache-2", isPublic: false)
        for kind in [TokenKind.push, .read] {
            let principal = Self.principal(kind)
            #expect(!AccessPolicy.allows(principal, .readCache(other)), "\(kind.rawValue)")
            #expect(!AccessPolicy.allows(principal, .writeCache(other)), "\(kind.rawValue)")
            #expect(
                (#expect(throws: ServiceError.self) { try AccessPolicy.requireRead(other, by: principal) })?.kind
                    == .forbidden)
        }
    }

    @Test func anonymousCallersReadOnlyPublicCaches() {
        #expect(throws: Never.self) { try AccessPolicy.requireRead(Self.cache(isPublic: true), by: nil) }
        #expect(
            (#expect(throws: ServiceError.self) { try AccessPolicy.requireRead(Self.cache(isPublic: false), by: nil) })?
                .kind == .unauthorized)
        #expect(
            (#expect(throws: ServiceError.self) { try AccessPolicy.requireWrite(Self.cache(isPublic: true), by: nil) })?
                .kind == .unauthorized)
    }

    @Test func onlyTheOperatorsAdminsCreateWorkspaces() {
        let admin = Self.principal(.admin)
        #expect(AccessPolicy.allows(admin, .createWorkspace(homeWorkspace: "default", operatorWorkspace: "default")))
        #expect(!AccessPolicy.allows(admin, .createWorkspace(homeWorkspace: "team-b", operatorWorkspace: "default")))
    }

    @Test func cachixPermissionNamesAdminWriteOrRead() {
        let own = Self.cache(isPublic: false)
        #expect(AccessPolicy.permission(on: own, by: Self.principal(.admin)) == .admin)
        #expect(AccessPolicy.permission(on: own, by: Self.principal(.push)) == .write)
        #expect(AccessPolicy.permission(on: own, by: Self.principal(.read)) == .read)
        #expect(AccessPolicy.permission(on: own, by: nil) == .read)
    }
}
