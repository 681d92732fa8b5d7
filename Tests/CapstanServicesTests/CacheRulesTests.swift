import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NIOCore
import NixCore
import Testing

/// What makes a path visible in a cache, in process, on both databases: uploads are checked
/// against what the client declared, and a refused upload leaves neither a narinfo nor a blob.
@Suite("Cache rules")
struct CacheRulesTests {
    static func nars(_ services: Services) async throws -> [BlobEntry] { try await services.store.blobs.list(.nars) }

    @Test(arguments: DatabaseBackend.allCases)
    func aCheckedUploadBecomesVisibleOnce(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let push = try await services.principal(.push)
            let cache = try await services.caches.writableCache(named: "fleet", by: push)
            let nar = SampleNar(contents: "hello")
            let stored = try await services.caches.upload(
                to: cache, info: nar.info, transit: .none, body: nar.body.async)
            #expect(!stored.alreadyPresent)
            let hashPart = nar.info.storePath.hashPart
            let text = try #require(try await services.caches.narInfo(in: cache, hashPart: hashPart))
            let info = try NarInfo(parsing: text)
            #expect(info.narHash.narInfoString == nar.info.narHash)
            #expect(info.sigs.count == 1)
            #expect(try await Self.nars(services).count == 1)
            let again = try await services.caches.upload(
                to: cache, info: nar.info, transit: .none, body: nar.body.async)
            #expect(again.alreadyPresent)
            #expect(try await Self.nars(services).count == 1)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func refusedUploadsLeaveNothingVisible(backend: DatabaseBackend) async throws {
        try await Services.with(backend, maxNarSize: 4096) { services in
            let push = try await services.principal(.push)
            let cache = try await services.caches.writableCache(named: "fleet", by: push)
            let nar = SampleNar(contents: "hello")
            var wrongHash = nar.info
            wrongHash.narHash = SampleNar(contents: "other").info.narHash
            var wrongSize = nar.info
            wrongSize.narSize += 8
            let big = SampleNar(contents: String(repeating: "x", count: 8192))
            let cases: [(PathUploadInfo, [ByteBuffer], String)] = [
                (wrongHash, nar.body, "NAR hash mismatch"),
                (wrongSize, nar.body, "NAR size mismatch"),
                (nar.info, [ByteBuffer(bytes: Array(nar.bytes.dropLast(8)))], "not a valid NAR"),
                (nar.info, [ByteBuffer(string: "not a nar at all")], "not a valid NAR"),
                (big.info, big.body, "larger than this server accepts"),
            ]
            for (info, body, reason) in cases {
                let error = await #expect(throws: ServiceError.self) {
                    try await services.caches.upload(to: cache, info: info, transit: .none, body: body.async)
                }
                #expect(error?.message.contains(reason) == true, "\(error?.message ?? "") should say \(reason)")
            }
            let hashPart = nar.info.storePath.hashPart
            #expect(try await services.caches.narInfo(in: cache, hashPart: hashPart) == nil)
            #expect(try await Self.nars(services).isEmpty)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aNixCopyUploadIsCheckedAgainstItsNarinfo(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let push = try await services.principal(.push)
            let cache = try await services.caches.writableCache(named: "fleet", by: push)
            let nar = SampleNar(contents: "staged")
            let fileHash = NixHasher.hash(.sha256, nar.bytes)
            let fileName = fileHash.digest(.nix32) + ".nar"
            try await services.caches.stageNar(in: cache, fileName: fileName, body: nar.body.async)
            #expect(try await services.store.blobs.list(.staged).count == 1)
            let hashPart = nar.info.storePath.hashPart
            let narInfo = """
                StorePath: \(nar.info.storePath)
                URL: nar/\(fileName)
                Compression: none
                FileHash: \(fileHash.narInfoString)
                FileSize: \(nar.bytes.count)
                NarHash: \(nar.info.narHash)
                NarSize: \(nar.info.narSize)
                References: \n
                """
            try await services.caches.putNarInfo(in: cache, hashPart: hashPart, text: narInfo)
            #expect(try await services.caches.narInfo(in: cache, hashPart: hashPart) != nil)
            #expect(try await services.store.blobs.list(.staged).isEmpty)
            // A narinfo naming a NAR that was never uploaded is refused.
            let other = SampleNar(contents: "never uploaded")
            let otherHash = other.info.storePath.hashPart
            let error = await #expect(throws: ServiceError.self) {
                try await services.caches.putNarInfo(
                    in: cache, hashPart: otherHash,
                    text: narInfo.replacingOccurrences(of: nar.info.storePath.path, with: other.info.storePath.path))
            }
            #expect(error?.message.contains("upload the NAR first") == true)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func pendingUploadBytesCountStagedNarsAndPartsUntilTheyAreUsedOrAborted(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let push = try await services.principal(.push)
            let cache = try await services.caches.writableCache(named: "fleet", by: push)
            let pending = { try await services.store.pendingUploadBytes(cacheID: cache.id) }
            let nar = SampleNar(contents: "counted")
            let fileName = nar.fileName
            try await services.caches.stageNar(in: cache, fileName: fileName, body: nar.body.async)
            #expect(try await pending() == Int64(nar.bytes.count))
            // The same file staged again replaces its count rather than adding to it.
            try await services.caches.stageNar(in: cache, fileName: fileName, body: nar.body.async)
            #expect(try await pending() == Int64(nar.bytes.count))
            let upload = try await services.caches.startMultipartUpload(in: cache, compression: .xz, by: push)
            _ = try await services.caches.storePart(
                of: upload, number: 1, contentMD5: nil, body: [ByteBuffer(bytes: [1, 2, 3])].async)
            _ = try await services.caches.storePart(
                of: upload, number: 2, contentMD5: nil, body: [ByteBuffer(bytes: [4, 5])].async)
            #expect(try await pending() == Int64(nar.bytes.count + 5))
            await services.caches.abortMultipartUpload(upload)
            #expect(try await pending() == Int64(nar.bytes.count))
            let hashPart = nar.info.storePath.hashPart
            try await services.caches.putNarInfo(in: cache, hashPart: hashPart, text: nar.narInfo())
            #expect(try await pending() == 0)
            // An expired staged NAR is swept with its count.
            try await services.caches.stageNar(in: cache, fileName: fileName, body: nar.body.async)
            #expect(try await pending() > 0)
            try await services.caches.sweepAbandonedUploads(now: Date().addingTimeInterval(2 * 24 * 3600))
            #expect(try await pending() == 0)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func parallelUploadsReserveTheirSpaceSoThatTogetherTheyStayWithinTheBound(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let limited = CacheService(
                store: services.store, blobs: services.store.blobs, publicURL: "http://capstan.test",
                maxNarSize: 1 << 30, uploadLimits: UploadLimits(maxPendingBytesPerCache: 100_000),
                logger: Services.logger)
            let cache = services.cache
            let upload = try await limited.startMultipartUpload(
                in: cache, compression: .xz, by: try await services.principal(.push))
            // Eight uploads of 30000 bytes at once, staged NARs and parts alike: three fit the bound.
            let refusals = await serviceErrors(of: 8) { index in
                let body = [ByteBuffer(repeating: UInt8(index), count: 30_000)]
                if index.isMultiple(of: 2) {
                    try await limited.stageNar(
                        in: cache, fileName: "nar\(index).nar", expectedSize: 30_000, body: body.async)
                } else {
                    _ = try await limited.storePart(
                        of: upload, number: index, contentMD5: nil, expectedSize: 30_000, body: body.async)
                }
            }
            #expect(refusals.count == 5)
            for refusal in refusals {
                #expect(refusal.kind == .insufficientStorage)
                #expect(refusal.message.contains("max_pending_upload_bytes"), "\(refusal.message)")
            }
            // The refused ones hold nothing: the sum is the three stored uploads, exactly.
            #expect(try await services.store.pendingUploadBytes(cacheID: cache.id) == 90_000)
            // A body longer than it was declared is refused once it goes over, and gives its space back.
            let liar = await #expect(throws: ServiceError.self) {
                try await limited.stageNar(
                    in: cache, fileName: "liar.nar", expectedSize: 1_000,
                    body: [ByteBuffer(repeating: 9, count: 20_000)].async)
            }
            #expect(liar?.kind == .insufficientStorage)
            #expect(try await services.store.pendingUploadBytes(cacheID: cache.id) == 90_000)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func privateCachesAreInvisibleToOtherWorkspaces(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let stranger = try await services.store.createWorkspace(name: "team-b")
            let strangerAdmin = try await services.principal(.admin, workspace: stranger)
            #expect(
                (await #expect(throws: ServiceError.self) {
                    try await services.caches.readableCache(named: "fleet", by: strangerAdmin)
                })?.kind == .notFound)
            #expect(
                (await #expect(throws: ServiceError.self) {
                    try await services.caches.writableCache(named: "fleet", by: strangerAdmin)
                })?.kind == .notFound)
            #expect(try await services.caches.list(by: strangerAdmin).isEmpty)
            #expect(
                (await #expect(throws: ServiceError.self) {
                    try await services.caches.readableCache(named: "fleet", by: nil)
                })?.kind == .unauthorized)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func privateCacheNamesAreEachWorkspacesOwnAndPublicNamesAreShared(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let owner = try await services.principal(.admin)
            let stranger = try await services.principal(
                .admin, workspace: try await services.store.createWorkspace(name: "team-b"))
            // Reading: another workspace's private cache answers exactly as a name nobody uses.
            let hidden = await #expect(throws: ServiceError.self) {
                try await services.caches.readableCache(named: "fleet", by: stranger)
            }
            let unused = await #expect(throws: ServiceError.self) {
                try await services.caches.readableCache(named: "unused", by: stranger)
            }
            #expect(hidden?.kind == .notFound)
            #expect(hidden?.kind == unused?.kind)
            #expect(hidden?.message.replacingOccurrences(of: "fleet", with: "unused") == unused?.message)
            let anonymousHidden = await #expect(throws: ServiceError.self) {
                try await services.caches.readableCache(named: "fleet", by: nil)
            }
            let anonymousUnused = await #expect(throws: ServiceError.self) {
                try await services.caches.readableCache(named: "unused", by: nil)
            }
            #expect(anonymousHidden?.kind == .unauthorized)
            #expect(anonymousHidden?.kind == anonymousUnused?.kind)
            #expect(
                anonymousHidden?.message.replacingOccurrences(of: "fleet", with: "unused") == anonymousUnused?.message)

            // Creating: the stranger's private "fleet" is its own, and each name means each one's cache.
            let theirs = try await services.caches.create(
                CreateCacheRequest(name: "fleet", isPublic: false), by: stranger)
            #expect(theirs.publicKey != services.cache.publicKey)
            #expect(try await services.caches.readableCache(named: "fleet", by: stranger).id != services.cache.id)
            #expect(try await services.caches.readableCache(named: "fleet", by: owner).id == services.cache.id)
            let again = await #expect(throws: ServiceError.self) {
                try await services.caches.create(CreateCacheRequest(name: "fleet", isPublic: true), by: stranger)
            }
            #expect(again?.kind == .conflict)
            #expect(again?.message.contains("already exists in this workspace") == true)

            // Public names are public: one per server, and anyone without a cache of that name reads it.
            let shared = try await services.caches.create(CreateCacheRequest(name: "shared", isPublic: true), by: owner)
            let taken = await #expect(throws: ServiceError.self) {
                try await services.caches.create(CreateCacheRequest(name: "shared", isPublic: true), by: stranger)
            }
            #expect(taken?.kind == .conflict)
            #expect(taken?.message.contains("a public cache named 'shared'") == true)
            #expect(
                try await services.caches.readableCache(named: "shared", by: stranger).publicKey == shared.publicKey)
            #expect(try await services.caches.readableCache(named: "shared", by: nil).publicKey == shared.publicKey)
            // A workspace's own cache of a public name comes first for its tokens, and is theirs only.
            let own = try await services.caches.create(
                CreateCacheRequest(name: "shared", isPublic: false), by: stranger)
            #expect(try await services.caches.readableCache(named: "shared", by: stranger).publicKey == own.publicKey)
            #expect(try await services.caches.readableCache(named: "shared", by: owner).publicKey == shared.publicKey)
            #expect(try await services.caches.readableCache(named: "shared", by: nil).publicKey == shared.publicKey)
            // Writing and managing resolve the same way: the stranger cannot reach the owner's private cache.
            #expect(try await services.caches.managedCache(named: "shared", by: stranger).publicKey == own.publicKey)
            #expect(try await services.caches.managedCache(named: "shared", by: owner).publicKey == shared.publicKey)
            let strangerPush = try await services.caches.writableCache(named: "fleet", by: stranger)
            #expect(strangerPush.publicKey == theirs.publicKey)
        }
    }
}

extension Array where Element == ByteBuffer {
    /// The chunks as the async sequence a request body is.
    var async: AsyncStream<ByteBuffer> {
        AsyncStream { continuation in
            for buffer in self { continuation.yield(buffer) }
            continuation.finish()
        }
    }
}
