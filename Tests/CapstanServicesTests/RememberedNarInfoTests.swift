import CapstanStorage
import Foundation
import Testing

@testable import CapstanServices

/// What the HTTP layer may answer from memory alone, on a connection's event loop: exactly what the
/// route would serve, and nothing once the route would refuse, miss, or read again.
@Suite("Narinfo from memory")
struct RememberedNarInfoTests {
    @Test(arguments: DatabaseBackend.allCases)
    func onlyWhatTheRouteServesIsAnsweredFromMemory(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let caches = services.caches
            let nar = SampleNar(contents: "remembered \(UUID())", name: "remembered")
            let pushed = try await caches.writableCache(named: "fleet", by: try await services.principal(.push))
            _ = try await caches.upload(to: pushed, info: nar.info, transit: .none, body: nar.body.async)
            let reader = try await services.principal(.read)
            let remembered = { (principal: Principal?) in
                caches.rememberedNarInfo(cacheNamed: "fleet", hashPart: nar.hashPart, by: principal)
            }
            #expect(remembered(reader) == nil, "nothing was read yet")

            let cache = try await caches.readableCache(named: "fleet", by: reader)
            let served = try #require(try await caches.narInfoText(in: cache, hashPart: nar.hashPart))
            #expect(remembered(reader) == served)
            #expect(remembered(try await services.principal(.admin)) == served)
            // What the route refuses: anonymous (401), an activate token (403), another workspace (404).
            #expect(remembered(nil) == nil)
            #expect(remembered(try await services.principal(.activate)) == nil)
            let elsewhere = try await services.store.createWorkspace(name: "elsewhere")
            #expect(remembered(try await services.principal(.admin, workspace: elsewhere)) == nil)
            let missing = String(repeating: "0", count: 32)
            #expect(caches.rememberedNarInfo(cacheNamed: "fleet", hashPart: missing, by: reader) == nil)
            // A removal or a reconfiguration anywhere: read again before anything is answered from memory.
            await caches.forget(cacheID: cache.id)
            #expect(remembered(reader) == nil)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aRevokedTokenIsNotRememberedAfterTheRevocation(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let created = try await services.tokens.issue(
                kind: .read, workspaceID: services.workspace.id, cacheID: services.cache.id, agentID: nil,
                label: "soon revoked")
            #expect(services.tokens.rememberedPrincipal(secret: created.token) == nil)
            let principal = try await services.tokens.authenticate(secret: created.token)
            #expect(services.tokens.rememberedPrincipal(secret: created.token)?.tokenID == principal.tokenID)
            try await services.tokens.revoke(id: created.info.id, by: try await services.principal(.admin))
            #expect(services.tokens.rememberedPrincipal(secret: created.token) == nil)
        }
    }
}
