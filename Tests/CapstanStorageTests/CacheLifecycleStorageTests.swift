import CapstanModel
import CapstanStorage
import Foundation
import Synchronization
import TestSupport
import Testing

/// Migration 5 on both databases: cache retention settings, path use times, request counts, and
/// the orphan-blob records whose row lock keeps an upload from rewriting a blob while it is deleted.
@Suite("Cache lifecycle storage on SQLite and PostgreSQL")
struct CacheLifecycleStorageTests {
    @Test(arguments: DatabaseBackend.allCases)
    func retentionSettingsAndUseTimesRoundTrip(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(cache)
            let stored = try #require(try await store.cache(id: cache.id))
            #expect(stored.retentionSeconds == nil)
            #expect(stored.maxSize == nil)
            #expect(stored.keepGenerations == 3)
            let updated = try await store.setCacheRetention(
                id: cache.id, retentionSeconds: 86_400, maxSize: 1 << 40, keepGenerations: 5)
            #expect(updated.retentionSeconds == 86_400)
            #expect(updated.maxSize == 1 << 40)
            #expect(updated.keepGenerations == 5)
            #expect(try await store.cache(named: cache.name, workspaceID: cache.workspaceID) == updated)

            let path = Sample.path(cacheID: cache.id)
            try await store.insertPath(path)
            #expect(
                try await store.pathUsages(cacheID: cache.id).first?.lastAccessed == path.createdAt.unixMilliseconds)
            let later = path.createdAt.addingTimeInterval(3600)
            try await store.recordPathAccess(cacheID: cache.id, hashParts: [path.hashPart], fileNames: [], at: later)
            #expect(try await store.pathUsages(cacheID: cache.id).first?.lastAccessed == later.unixMilliseconds)
            // An older use never moves the time back; a download (by file) counts too.
            try await store.recordPathAccess(
                cacheID: cache.id, hashParts: [], fileNames: [path.fileName], at: later.addingTimeInterval(-60))
            #expect(try await store.pathUsages(cacheID: cache.id).first?.lastAccessed == later.unixMilliseconds)
            try await store.recordPathAccess(
                cacheID: cache.id, hashParts: [], fileNames: [path.fileName], at: later.addingTimeInterval(60))
            #expect(
                try await store.pathUsages(cacheID: cache.id).first?.lastAccessed
                    == later.addingTimeInterval(60).unixMilliseconds)

            let now = Date()
            try await store.addRequestCounts([(cache.id, 3, 1)], at: now)
            try await store.addRequestCounts([(cache.id, 2, 0)], at: now)
            try await store.addRequestCounts([(cache.id, 100, 100)], at: now.addingTimeInterval(-3 * 86_400))
            let counts = try await store.requestCounts(cacheID: cache.id, since: now.addingTimeInterval(-86_400))
            #expect(counts.hits == 5)
            #expect(counts.misses == 1)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aBlobBecomesAnOrphanOnlyWhenNoCacheUsesItAndIsDeletedOnlyWhenDue(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let one = Sample.cache(workspaceID: workspace.id)
            let two = Sample.cache(workspaceID: workspace.id)
            try await store.insertCache(one)
            try await store.insertCache(two)
            let shared = Sample.path(cacheID: one.id)
            var sharedInTwo = shared
            sharedInTwo.cacheID = two.id
            let own = Sample.path(cacheID: one.id, references: [shared.storePath.path])
            for path in [shared, sharedInTwo, own] { try await store.insertPath(path) }
            let removedAt = Date()
            let removed = try await store.removePaths(
                cacheID: one.id, hashParts: [own.hashPart, shared.hashPart, Sample.hashPart()], at: removedAt)
            #expect(Set(removed) == [own.hashPart, shared.hashPart])
            #expect(try await store.referenceEdges(cacheID: one.id).isEmpty)
            #expect(try await store.orphanBlobNames() == [own.fileName])
            #expect(try await store.isOrphanBlob(fileName: own.fileName))
            #expect(try await store.isOrphanBlob(fileName: shared.fileName) == false)

            let deleted = Mutex<[String]>([])
            let early = try await store.deleteOrphanBlobs(
                [own.fileName], dueBy: removedAt.addingTimeInterval(-1)
            ) { name in
                deleted.withLock { $0.append(name) }
                return 1
            }
            #expect(early == OrphanBlobOutcome())
            let due = try await store.orphanBlobs(dueBy: removedAt.addingTimeInterval(1))
            #expect(due.due == [own.fileName])
            let outcome = try await store.deleteOrphanBlobs([own.fileName], dueBy: removedAt.addingTimeInterval(1)) {
                name in
                deleted.withLock { $0.append(name) }
                return 42
            }
            #expect(outcome.deleted.map(\.fileName) == [own.fileName])
            #expect(outcome.deleted.map(\.size) == [42])
            #expect(deleted.withLock { $0 } == [own.fileName])
            #expect(try await store.orphanBlobNames().isEmpty)

            // A blob recorded as unused that a path uses again is no orphan any more, and is not deleted.
            try await store.addOrphanBlobs([sharedInTwo.fileName], at: removedAt)
            #expect(try await store.orphanBlobNames().isEmpty, "a blob in use is never recorded")
            let reused = Sample.path(cacheID: two.id)
            try await store.insertPath(reused)
            try await store.removePaths(cacheID: two.id, hashParts: [reused.hashPart], at: removedAt)
            try await store.insertPath(reused)
            let skipped = try await store.deleteOrphanBlobs([reused.fileName], dueBy: Date().addingTimeInterval(1)) {
                _ in
                Issue.record("a blob in use must not be deleted")
                return nil
            }
            #expect(skipped.inUse == [reused.fileName])
            #expect(try await store.orphanBlobNames().isEmpty)
        }
    }

    /// An upload reclaiming a blob while a collection deletes it waits for the deletion to end.
    @Test(arguments: DatabaseBackend.allCases)
    func reclaimingABlobWaitsForItsDeletionInProgress(backend: DatabaseBackend) async throws {
        try await StoreFixture.withReplicas(backend) { stores in
            let (collector, uploader) = (stores[0], stores[1])
            let workspace = try await Sample.workspace(collector)
            let cache = Sample.cache(workspaceID: workspace.id)
            try await collector.insertCache(cache)
            let path = Sample.path(cacheID: cache.id)
            try await collector.insertPath(path)
            let removedAt = Date()
            try await collector.removePaths(cacheID: cache.id, hashParts: [path.hashPart], at: removedAt)
            let events = Mutex<[String]>([])
            let (started, startedContinuation) = AsyncStream<Void>.makeStream()
            async let deletion = collector.deleteOrphanBlobs([path.fileName], dueBy: removedAt.addingTimeInterval(1)) {
                _ in
                startedContinuation.yield()
                try await Task.sleep(for: .milliseconds(800))
                events.withLock { $0.append("deleted") }
                return 1
            }
            for await _ in started { break }
            try await uploader.reclaimOrphanBlob(fileName: path.fileName)
            events.withLock { $0.append("reclaimed") }
            let outcome = try await deletion
            #expect(outcome.deleted.map(\.fileName) == [path.fileName])
            #expect(events.withLock { $0 } == ["deleted", "reclaimed"])
        }
    }
}
