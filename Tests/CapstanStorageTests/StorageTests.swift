import CapstanModel
import CapstanStorage
import Foundation
import TestSupport
import Testing

@Suite("Storage on SQLite and PostgreSQL")
struct StorageTests {
    @Test(arguments: DatabaseBackend.allCases)
    func migrationsRunOnceAndAreRecorded(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend, migrate: false) { store in
            #expect(try await store.migrate() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
            #expect(try await store.migrate() == [])
            #expect(try await store.appliedMigrations() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
            try await store.ping()
        }
    }

    /// An activation's audit reads its deployments by activation: through an index, not the whole
    /// history of deployments (a sequential scan that grew with every activation).
    @Test(arguments: DatabaseBackend.allCases)
    func anActivationsDeploymentsAreFoundThroughAnIndex(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            switch backend {
            case .postgres:
                let plan = try await store.database.transaction { db -> String in
                    // PostgreSQL scans a small table whatever its indexes: make it say what it would use.
                    try await db.raw("SET LOCAL enable_seqscan = off").run()
                    return try await db.raw(
                        "EXPLAIN SELECT id FROM deployments WHERE activation_id = \(bind: "a")"
                    ).all().map { try $0.decode(column: "QUERY PLAN", as: String.self) }.joined(separator: "\n")
                }
                #expect(plan.contains("deployments_activation"), "\(plan)")
            case .sqlite:
                // SQLite plans an empty table's scan without its indexes; the index must exist, on that column.
                let columns = try await store.database.sql.raw(
                    "SELECT name FROM pragma_index_info('deployments_activation')"
                ).all(decodingColumn: "name", as: String.self)
                #expect(columns == ["activation_id"])
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func concurrentMigrationsApplyEachVersionOnce(backend: DatabaseBackend) async throws {
        let location = try StoreFixture.makeLocation(backend)
        // Separate stores stand for separate server processes starting together.
        let stores = try await withThrowingTaskGroup(of: CapstanStore.self) { group in
            for _ in 0..<3 { group.addTask { try await StoreFixture.open(location) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
            for store in stores { group.addTask { try await store.migrate() } }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(applied.sorted() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        #expect(try await stores[0].appliedMigrations() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        for store in stores { try await store.shutdown() }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func workspacesAreCreatedAndFound(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let alpha = try await store.createWorkspace(name: "alpha")
            let beta = try await store.createWorkspace(name: "beta")
            #expect(try await store.workspace(named: "alpha") == alpha)
            #expect(try await store.workspace(id: beta.id) == beta)
            #expect(try await store.workspace(named: "gamma") == nil)
            #expect(try await store.workspaces() == [alpha, beta])
            await #expect(throws: StorageError.duplicate(what: "workspace", name: "alpha")) {
                try await store.createWorkspace(name: "alpha")
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func tokensAreStoredByHashAndRevokedOnlyInTheirWorkspace(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let own = try await Sample.workspace(store)
            let other = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: own.id)
            try await store.insertCache(cache)
            let created = Date(timeIntervalSince1970: 1_700_000_000.123)
            let push = TokenRecord(
                id: "tok-push", workspaceID: own.id, kind: .push, cacheID: cache.id, label: "ci", createdAt: created)
            let agent = TokenRecord(
                id: "tok-agent", workspaceID: own.id, kind: .agent, agentID: "web1",
                createdAt: created.addingTimeInterval(1))
            try await store.insertToken(push, secretHash: String(repeating: "a", count: 64))
            try await store.insertToken(agent, secretHash: String(repeating: "b", count: 64))

            #expect(try await store.token(secretHash: String(repeating: "a", count: 64)) == push)
            #expect(try await store.token(secretHash: String(repeating: "c", count: 64)) == nil)
            #expect(try await store.tokens(workspaceID: own.id) == [push, agent])
            #expect(try await store.tokens(workspaceID: other.id) == [])

            await #expect(throws: StorageError.duplicate(what: "token", name: "tok-other")) {
                try await store.insertToken(
                    TokenRecord(id: "tok-other", workspaceID: own.id, kind: .admin, createdAt: created),
                    secretHash: String(repeating: "a", count: 64))
            }

            let used = Date(timeIntervalSince1970: 1_700_000_100.5)
            try await store.touchToken(id: push.id, at: used)
            #expect(try await store.token(secretHash: String(repeating: "a", count: 64))?.lastUsedAt == used)

            #expect(try await store.revokeToken(id: push.id, workspaceID: other.id) == false)
            #expect(try await store.token(secretHash: String(repeating: "a", count: 64))?.revokedAt == nil)
            #expect(try await store.revokeToken(id: "missing", workspaceID: own.id) == false)
            let revokedAt = Date(timeIntervalSince1970: 1_700_000_200)
            #expect(try await store.revokeToken(id: push.id, workspaceID: own.id, at: revokedAt))
            #expect(try await store.revokeToken(id: push.id, workspaceID: own.id, at: revokedAt.addingTimeInterval(9)))
            let revoked = try #require(try await store.token(secretHash: String(repeating: "a", count: 64)))
            #expect(revoked.revokedAt == revokedAt)
            #expect(revoked.isRevoked)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func unreadableRowsNameTheTableAndKey(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let token = TokenRecord(id: "tok-odd", workspaceID: workspace.id, kind: .read, createdAt: Date())
            try await store.insertToken(token, secretHash: "ab")
            // A kind written by a newer server that this one does not know.
            try await store.database.transaction { db in
                try await db.raw("UPDATE tokens SET kind = 'root' WHERE id = 'tok-odd'").run()
            }
            await #expect(
                throws: StorageError.invalidRow(table: "tokens", key: "tok-odd", reason: "unknown token kind 'root'")
            ) {
                try await store.token(secretHash: "ab")
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func cacheNamesAreUniquePerWorkspaceAndAmongPublicCaches(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let own = try await Sample.workspace(store)
            let other = try await Sample.workspace(store)
            let main = Sample.cache(workspaceID: own.id, name: "main")
            var privateCache = Sample.cache(workspaceID: own.id, name: "a-private")
            privateCache.isPublic = false
            privateCache.priority = 10
            try await store.insertCache(main)
            try await store.insertCache(privateCache)

            #expect(try await store.cache(named: "main", workspaceID: own.id) == main)
            #expect(try await store.cache(id: privateCache.id) == privateCache)
            #expect(try await store.cache(named: "nope", workspaceID: own.id) == nil)
            #expect(try await store.caches(workspaceID: own.id) == [privateCache, main])
            #expect(try await store.caches(workspaceID: other.id) == [])

            // A public name is taken for every workspace; a workspace's own name for that workspace.
            let taken = Sample.cache(workspaceID: other.id, name: "main")
            await #expect(throws: StorageError.duplicate(what: "public cache", name: "main")) {
                try await store.insertCache(taken)
            }
            var ownAgain = Sample.cache(workspaceID: own.id, name: "a-private")
            ownAgain.isPublic = false
            await #expect(throws: StorageError.duplicate(what: "cache", name: "a-private")) {
                try await store.insertCache(ownAgain)
            }
            // Another workspace's private name is free, privately or publicly.
            var theirs = Sample.cache(workspaceID: other.id, name: "a-private")
            theirs.isPublic = false
            try await store.insertCache(theirs)
            var privateMain = Sample.cache(workspaceID: other.id, name: "main")
            privateMain.isPublic = false
            try await store.insertCache(privateMain)

            // A name means the caller's own cache first, then the public one; nothing private of others.
            #expect(try await store.cache(resolving: "a-private", for: own.id) == privateCache)
            #expect(try await store.cache(resolving: "a-private", for: other.id) == theirs)
            #expect(try await store.cache(resolving: "a-private", for: nil) == nil)
            #expect(try await store.cache(resolving: "main", for: other.id) == privateMain)
            #expect(try await store.cache(resolving: "main", for: nil) == main)
            let third = try await Sample.workspace(store)
            #expect(try await store.cache(resolving: "main", for: third.id) == main)
            #expect(try await store.cache(resolving: "a-private", for: third.id) == nil)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func missingHashesKeepOrderAndDropDuplicates(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(cache)
            let hashes = (0..<2_000).map { _ in Sample.hashPart() }
            // Every third path is present; they straddle the 500-hash chunks.
            for (index, hash) in hashes.enumerated() where index % 3 == 0 {
                try await store.insertPath(Sample.path(cacheID: cache.id, hashPart: hash))
            }
            let expected = hashes.enumerated().filter { $0.offset % 3 != 0 }.map(\.element)
            let asked = hashes + hashes.reversed()
            #expect(try await store.missingHashes(cacheID: cache.id, hashes: asked) == expected)

            let small = [hashes[1], hashes[0], hashes[2], hashes[1]]
            #expect(try await store.missingHashes(cacheID: cache.id, hashes: small) == [hashes[1], hashes[2]])
            #expect(try await store.missingHashes(cacheID: cache.id, hashes: []) == [])

            let otherCache = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(otherCache)
            #expect(try await store.missingHashes(cacheID: otherCache.id, hashes: small) == Array(small.prefix(3)))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func pathsAndTheirReferenceGraph(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(cache)
            let glibc = Sample.path(cacheID: cache.id, name: "glibc-2.39")
            let glibcBase = "\(glibc.hashPart)-glibc-2.39"
            var hello = Sample.path(
                cacheID: cache.id, name: "hello-2.12", references: [glibcBase, glibcBase])
            hello.references = ["\(hello.hashPart)-hello-2.12", glibcBase]
            hello.ca = "fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s"

            #expect(try await store.insertPath(hello))
            #expect(try await store.insertPath(hello) == false)
            var changed = hello
            changed.narSize = 1
            #expect(try await store.insertPath(changed) == false)
            #expect(try await store.insertPath(glibc))

            #expect(try await store.path(cacheID: cache.id, hashPart: hello.hashPart) == hello)
            #expect(try await store.path(cacheID: cache.id, fileName: glibc.fileName) == glibc)
            #expect(try await store.path(cacheID: cache.id, hashPart: Sample.hashPart()) == nil)
            #expect(try await store.paths(cacheID: cache.id) == [glibc, hello].sorted { $0.hashPart < $1.hashPart })

            #expect(
                try await store.references(cacheID: cache.id, hashPart: hello.hashPart)
                    == [hello.hashPart, glibc.hashPart].sorted())
            #expect(try await store.references(cacheID: cache.id, hashPart: glibc.hashPart) == [])
            #expect(
                try await store.referrers(cacheID: cache.id, hashPart: glibc.hashPart) == [hello.hashPart])

            #expect(try await store.isBlobReferenced(fileName: hello.fileName))
            #expect(try await store.isBlobReferenced(fileName: "nothing.nar.zst") == false)

            let empty = Sample.path(cacheID: cache.id, references: [])
            var bare = empty
            bare.sigs = []
            bare.deriver = nil
            #expect(try await store.insertPath(bare))
            #expect(try await store.path(cacheID: cache.id, hashPart: bare.hashPart) == bare)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func concurrentInsertsOfOnePathHaveOneWinner(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(cache)
            let references = (0..<20).map { _ in "\(Sample.hashPart())-dep" }
            let path = Sample.path(cacheID: cache.id, references: references)
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<8 { group.addTask { try await store.insertPath(path) } }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            #expect(try await store.references(cacheID: cache.id, hashPart: path.hashPart).count == 20)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func statsAddUpTheCache(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: workspace.id)
            let other = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(cache)
            try await store.insertCache(other)
            #expect(try await store.stats(cacheID: cache.id) == CacheStats(pathCount: 0, narSize: 0, fileSize: 0))
            let big: Int64 = 5_000_000_000
            try await store.insertPath(Sample.path(cacheID: cache.id, narSize: big, fileSize: 3))
            try await store.insertPath(Sample.path(cacheID: cache.id, narSize: 7, fileSize: big))
            try await store.insertPath(Sample.path(cacheID: other.id, narSize: 100, fileSize: 100))
            #expect(
                try await store.stats(cacheID: cache.id)
                    == CacheStats(pathCount: 2, narSize: big + 7, fileSize: big + 3))
        }
    }

    @Test func unknownDatabaseURLsAreRefusedWithTheURL() async throws {
        let directory = try TemporaryDirectory()
        await #expect {
            try await CapstanStore.open(
                databaseURL: "mysql://root@localhost/capstan", dataDirectory: directory.path,
                logger: StoreFixture.logger)
        } throws: { error in
            guard case .invalidDatabaseURL(let url, _) = error as? StorageError else { return false }
            return url == "mysql://root@localhost/capstan"
        }
    }

    @Test func errorsHideDatabasePasswords() {
        let error = StorageError.invalidDatabaseURL("postgres://capstan:hunter2@db:5432/capstan", reason: "x")
        #expect(!error.description.contains("hunter2"))
        #expect(error.description.contains("postgres://capstan:***@db:5432/capstan"))
    }

    @Test func sqliteDatabaseLivesInTheDataDirectory() async throws {
        let directory = try TemporaryDirectory()
        let store = try await CapstanStore.open(
            databaseURL: "sqlite:", dataDirectory: directory.path, logger: StoreFixture.logger)
        try await store.migrate()
        try await store.shutdown()
        #expect(FileManager.default.fileExists(atPath: directory.sub("capstan.sqlite")))
        #expect(FileManager.default.fileExists(atPath: directory.sub("blobs/nar")))
    }
}
