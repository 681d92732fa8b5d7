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
            let hashPart = String(nar.info.storePath.dropFirst("/nix/store/".count).prefix(32))
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
            let hashPart = String(nar.info.storePath.dropFirst("/nix/store/".count).prefix(32))
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
            let hashPart = String(nar.info.storePath.dropFirst("/nix/store/".count).prefix(32))
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
            let otherHash = String(other.info.storePath.dropFirst("/nix/store/".count).prefix(32))
            let error = await #expect(throws: ServiceError.self) {
                try await services.caches.putNarInfo(
                    in: cache, hashPart: otherHash,
                    text: narInfo.replacingOccurrences(of: nar.info.storePath, with: other.info.storePath))
            }
            #expect(error?.message.contains("upload the NAR first") == true)
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
