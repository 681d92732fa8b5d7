import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NIOCore
import NixCore
import Testing

/// An upload's blob is put in place under its content key before the transaction that makes its
/// path visible, which only records rows: a slow blob store holds no database lock, and a blob
/// whose path was never recorded is no path's NAR and goes with the next collection.
@Suite("Blob commits")
struct BlobCommitTests {
    @Test(arguments: DatabaseBackend.allCases)
    func anotherUploadIsRecordedWhileABlobStoreIsSlowToStoreOne(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let gate = BlobGate()
            let held = InterposingBlobStore(services.store.blobs, beforeNarCommit: { _ in await gate.pass() })
            let slow = CacheService(
                store: services.store, blobs: held, publicURL: "http://capstan.test", maxNarSize: 1 << 30,
                logger: Services.logger)
            let cache = try await services.caches.writableCache(named: "fleet", by: try await services.principal(.push))
            let stuck = SampleNar(contents: "held by the blob store \(UUID())", name: "stuck")
            let quick = SampleNar(contents: "stored meanwhile \(UUID())", name: "quick")
            let stuckUpload = Task {
                try await slow.upload(to: cache, info: stuck.info, transit: .none, body: stuck.body.async)
            }
            await gate.waitUntilHeld()
            // The other upload goes through to the database while the first one's blob is still being stored.
            let quickFinished = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    (try? await services.caches.upload(
                        to: cache, info: quick.info, transit: .none, body: quick.body.async))
                        != nil
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(60))
                    return false
                }
                let first = await group.next() ?? false
                // Whatever happened, the held upload may go on now, so that nothing is left waiting.
                await gate.open()
                group.cancelAll()
                await group.waitForAll()
                return first
            }
            #expect(quickFinished, "an upload waited for another upload's blob store")
            let stored = try await stuckUpload.value
            #expect(!stored.alreadyPresent)
            for nar in [stuck, quick] {
                let text = try #require(try await services.caches.narInfo(in: cache, hashPart: nar.hashPart))
                let fileName = String(try NarInfo(parsing: text).url.dropFirst(4))
                #expect(try await services.caches.nar(in: cache, fileName: fileName) != nil)
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aLateUploadIsRecordedOnlyIfItsBlobIsStillThere(backend: DatabaseBackend) async throws {
        // No grace at all: every upload is past its deadline by the time its transaction commits.
        let lifecycle = CacheLifecycleSettings(blobGrace: .zero)
        try await Services.with(backend, lifecycle: lifecycle) { services in
            let cache = try await services.caches.writableCache(named: "fleet", by: try await services.principal(.push))
            func caches(_ blobs: any BlobStore) -> CacheService {
                CacheService(
                    store: services.store, blobs: blobs, publicURL: "http://capstan.test", maxNarSize: 1 << 30,
                    lifecycle: lifecycle, logger: Services.logger)
            }
            let late = SampleNar(contents: "late but whole \(UUID())", name: "late")
            let stored = try await caches(services.store.blobs).upload(
                to: cache, info: late.info, transit: .none, body: late.body.async)
            #expect(!stored.alreadyPresent)
            #expect(try await services.caches.narInfo(in: cache, hashPart: late.hashPart) != nil)
            // What a collection that found the blob unused does while the upload is late: deletes it.
            let base = services.store.blobs
            let collected = InterposingBlobStore(base, afterNarCommit: { key in try await base.delete(key) })
            let gone = SampleNar(contents: "late and collected \(UUID())", name: "gone")
            let refused = await #expect(throws: ServiceError.self) {
                try await caches(collected).upload(to: cache, info: gone.info, transit: .none, body: gone.body.async)
            }
            #expect(refused?.kind == .unavailable)
            #expect(refused?.message.contains("upload it again") == true)
            #expect(try await services.caches.narInfo(in: cache, hashPart: gone.hashPart) == nil)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aBlobWhosePathWasNeverRecordedShowsNoNarinfoAndIsCollected(backend: DatabaseBackend) async throws {
        let lifecycle = CacheLifecycleSettings(blobGrace: .seconds(600))
        try await Services.with(backend, lifecycle: lifecycle) { services in
            let cache = try await services.caches.writableCache(named: "fleet", by: try await services.principal(.push))
            let kept = SampleNar(contents: "recorded \(UUID())", name: "kept")
            _ = try await services.caches.upload(to: cache, info: kept.info, transit: .none, body: kept.body.async)
            // What a server killed between the two steps of an upload leaves: the blob under its key, no row.
            let crashed = SampleNar(contents: "never recorded \(UUID())", name: "crashed")
            let fileName = NixHasher.hash(.sha256, crashed.bytes).digest(.nix32) + ".nar"
            try await services.store.blobs.put(crashed.bytes, as: .nar(fileName))
            #expect(try await services.caches.narInfo(in: cache, hashPart: crashed.hashPart) == nil)
            #expect(try await services.caches.nar(in: cache, fileName: fileName) == nil)
            // Young, it may be an upload's about to be recorded: left alone.
            let early = try await services.caches.collectGarbage(in: cache, dryRun: false)
            #expect(early.blobsDeleted == 0)
            #expect(try await services.store.blobs.size(of: .nar(fileName)) != nil)
            // Older than the grace period and used by no path: recorded as unused and deleted.
            let later = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: Date().addingTimeInterval(601))
            #expect(later.blobsDeleted == 1)
            let left = try await services.store.blobs.list(.nars).map(\.key)
            let keptFile = try #require(try await services.store.path(cacheID: cache.id, hashPart: kept.hashPart))
            #expect(left == [.nar(keptFile.fileName)])
        }
    }
}

extension SampleNar {
    var hashPart: String { info.storePath.hashPart }
}

/// Opens once; until then every task that reaches it waits, and one waiting for the first arrival is told.
actor BlobGate {
    private var isOpen = false
    private var isHeld = false
    private var held: [CheckedContinuation<Void, Never>] = []
    private var watchers: [CheckedContinuation<Void, Never>] = []

    func pass() async {
        guard !isOpen else { return }
        isHeld = true
        for watcher in watchers { watcher.resume() }
        watchers = []
        await withCheckedContinuation { held.append($0) }
    }

    func waitUntilHeld() async {
        guard !isHeld else { return }
        await withCheckedContinuation { watchers.append($0) }
    }

    func open() {
        isOpen = true
        for continuation in held { continuation.resume() }
        held = []
    }
}

/// A blob store that runs something of the test's before and after each NAR commit: an object store
/// slow to complete and copy a blob, or a collection deleting it right after.
struct InterposingBlobStore: BlobStore {
    let base: any BlobStore
    let beforeNarCommit: @Sendable (BlobKey) async -> Void
    let afterNarCommit: @Sendable (BlobKey) async throws -> Void

    init(
        _ base: any BlobStore, beforeNarCommit: @escaping @Sendable (BlobKey) async -> Void = { _ in },
        afterNarCommit: @escaping @Sendable (BlobKey) async throws -> Void = { _ in }
    ) {
        self.base = base
        self.beforeNarCommit = beforeNarCommit
        self.afterNarCommit = afterNarCommit
    }

    func makeWriter() async throws -> any BlobWriter {
        InterposingBlobWriter(base: try await base.makeWriter(), store: self)
    }
    func size(of key: BlobKey) async throws -> Int64? { try await base.size(of: key) }
    func read(_ key: BlobKey, range: Range<Int64>?) async throws -> BlobBytes? {
        try await base.read(key, range: range)
    }
    func delete(_ key: BlobKey) async throws -> Bool { try await base.delete(key) }
    func list(_ prefix: BlobPrefix) async throws -> [BlobEntry] { try await base.list(prefix) }
}

final class InterposingBlobWriter: BlobWriter {
    let base: any BlobWriter
    let store: InterposingBlobStore

    init(base: any BlobWriter, store: InterposingBlobStore) {
        self.base = base
        self.store = store
    }

    var bytesWritten: Int64 { base.bytesWritten }
    func write(_ buffer: ByteBuffer) async throws { try await base.write(buffer) }
    func discard() async { await base.discard() }

    func commit(as key: BlobKey) async throws {
        guard case .nar = key else { return try await base.commit(as: key) }
        await store.beforeNarCommit(key)
        try await base.commit(as: key)
        try await store.afterNarCommit(key)
    }
}
