import CapstanModel
import Foundation
import SQLKit
import Testing

@testable import CapstanStorage

/// The migration that scopes cache names to workspaces rebuilds the caches table on SQLite: every row
/// that refers to a cache (paths, their references, agents) must come through it whole.
@Suite("Cache name migration")
struct CacheNameMigrationTests {
    @Test(arguments: DatabaseBackend.allCases)
    func existingCachesAndWhatRefersToThemSurviveTheMigration(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend, migrate: false) { store in
            let before = Migrations.all.filter { $0.version < Migrations.cacheNamesByWorkspace.version }
            try await Migrator(database: store.database, migrations: before).migrate()
            let workspace = try await Sample.workspace(store)
            var cache = Sample.cache(workspaceID: workspace.id, name: "fleet")
            cache.isPublic = false
            try await store.insertCache(cache)
            let dependency = Sample.path(cacheID: cache.id)
            let program = Sample.path(cacheID: cache.id, references: [dependency.storePath.path])
            try await store.insertPath(dependency)
            try await store.insertPath(program)
            let agent = AgentRecord(
                id: UUID().uuidString.lowercased(), workspaceID: workspace.id, name: "web1", cacheID: cache.id,
                system: nil, version: nil, currentStorePath: nil, lastSeen: nil, createdAt: Date())
            try await store.insertAgent(agent)

            #expect(try await store.migrate().first == Migrations.cacheNamesByWorkspace.version)

            #expect(try await store.cache(id: cache.id) == cache)
            #expect(try await store.paths(cacheID: cache.id).count == 2)
            #expect(
                try await store.references(cacheID: cache.id, hashPart: program.hashPart) == [dependency.hashPart])
            #expect(try await store.agent(id: agent.id)?.cacheID == cache.id)
            // The new rule holds, and references are enforced again: a path of no cache is refused.
            let other = try await Sample.workspace(store)
            var theirs = Sample.cache(workspaceID: other.id, name: "fleet")
            theirs.isPublic = false
            try await store.insertCache(theirs)
            await #expect(throws: (any Error).self) {
                try await store.insertPath(Sample.path(cacheID: "no-such-cache"))
            }
        }
    }
}
