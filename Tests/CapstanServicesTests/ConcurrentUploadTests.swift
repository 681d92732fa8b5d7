import CapstanModel
import CapstanServices
import CapstanStorage
import Compression
import Foundation
import NIOCore
import NixCore
import Testing

/// Many uploads of one store path at once, on both databases: exactly one wins the path, every
/// other one learns it (the same NAR: `alreadyPresent` with the winner's hashes; another NAR: a
/// conflict naming the path and the hash the cache holds), and the losers' blobs are recorded as
/// unused, so that after the grace period no blob but the winner's remains.
@Suite("Concurrent uploads of one path")
struct ConcurrentUploadTests {
    static let racers = 8

    /// One path's NAR, large enough that zstd levels give different bytes.
    static func nar(_ seed: String) -> SampleNar {
        let line = (0..<400).map { "\(seed) line \($0 * 7919 % 1009)\n" }.joined()
        return SampleNar(contents: line, name: "raced")
    }

    /// The upload info of `nar` under the store path of `path`: the same path with another NAR.
    static func info(of nar: SampleNar, as path: SampleNar) -> PathUploadInfo {
        var info = nar.info
        info.storePath = path.info.storePath
        return info
    }

    static func hashPart(_ nar: SampleNar) -> String {
        nar.info.storePath.hashPart
    }

    /// The NAR blobs left once a collection after the grace period deleted the unused ones; every
    /// blob but those a path uses must have been recorded as unused before.
    static func blobsAfterCollection(_ services: Services) async throws -> [BlobKey] {
        let stored = Set(try await services.store.blobs.list(.nars).map(\.key))
        let used = Set(try await services.store.paths(cacheID: services.cache.id).map { BlobKey.nar($0.fileName) })
        let unused = Set(try await services.store.orphanBlobNames().map { BlobKey.nar($0) })
        #expect(stored.subtracting(used) == unused, "every blob no path uses is recorded as unused")
        _ = try await services.caches.collectGarbage(
            in: services.cache, dryRun: false, now: Date().addingTimeInterval(2 * 3600))
        return try await services.store.blobs.list(.nars).map(\.key)
    }

    @Test(arguments: DatabaseBackend.allCases)
    func theSameNarCompressedDifferentlyIsStoredOnce(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let cache = try await services.caches.writableCache(named: "fleet", by: try await services.principal(.push))
            let nar = Self.nar("same")
            // Sent zstd-compressed at different levels, each is stored as sent: blobs that differ.
            let bodies = try (0..<Self.racers).map { racer in
                [ByteBuffer(bytes: try ZstdEncoder(level: Int32(1 + racer * 2)).transform(nar.bytes))]
            }
            #expect(Set(bodies.map { Array($0[0].readableBytesView) }).count > 1)
            let results = try await withThrowingTaskGroup(of: PathUploadResult.self) { group in
                for body in bodies {
                    group.addTask {
                        try await services.caches.upload(to: cache, info: nar.info, transit: .zstd, body: body.async)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { !$0.alreadyPresent }.count == 1)
            let winner = try #require(results.first { !$0.alreadyPresent })
            for result in results {
                #expect(result.narHash == nar.info.narHash)
                #expect(result.fileHash == winner.fileHash)
            }
            let served = try NarInfo(
                parsing: try #require(try await services.caches.narInfo(in: cache, hashPart: Self.hashPart(nar))))
            #expect(served.fileHash?.narInfoString == winner.fileHash)
            let blobs = try await Self.blobsAfterCollection(services)
            #expect(blobs == [.nar(served.url.replacingOccurrences(of: "nar/", with: ""))])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func differentNarsOfOnePathAreRefusedButOne(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let cache = try await services.caches.writableCache(named: "fleet", by: try await services.principal(.push))
            let path = Self.nar("racer 0")
            let nars = (0..<Self.racers).map { Self.nar("racer \($0)") }
            let outcomes = await withTaskGroup(of: Result<PathUploadResult, ServiceError>.self) { group in
                for nar in nars {
                    group.addTask {
                        do {
                            return .success(
                                try await services.caches.upload(
                                    to: cache, info: Self.info(of: nar, as: path), transit: .none, body: nar.body.async)
                            )
                        } catch let error as ServiceError {
                            return .failure(error)
                        } catch {
                            return .failure(ServiceError(.unavailable, "unexpected: \(error)"))
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let stored = outcomes.compactMap { try? $0.get() }
            #expect(stored.count == 1)
            let winner = try #require(stored.first)
            #expect(!winner.alreadyPresent)
            let refusals = outcomes.compactMap { outcome -> ServiceError? in
                if case .failure(let error) = outcome { return error }
                return nil
            }
            #expect(refusals.count == Self.racers - 1)
            for refusal in refusals {
                #expect(refusal.kind == .conflict)
                #expect(refusal.message.contains(path.info.storePath.path), "\(refusal.message)")
                #expect(refusal.message.contains(winner.narHash), "\(refusal.message)")
            }
            let served = try NarInfo(
                parsing: try #require(try await services.caches.narInfo(in: cache, hashPart: Self.hashPart(path))))
            #expect(served.narHash.narInfoString == winner.narHash)
            #expect(try await Self.blobsAfterCollection(services) == [.nar(String(served.url.dropFirst(4)))])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func racingNixCopyUploadsLeaveOnePathAndNoStagedNar(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let cache = try await services.caches.writableCache(named: "fleet", by: try await services.principal(.push))
            let path = Self.nar("copy 0")
            // Two copies of each NAR: the same NAR twice is told nothing, another NAR gets a conflict.
            let nars = (0..<Self.racers).map { Self.nar("copy \($0 / 2)") }
            for nar in Set(nars.map(\.bytes)) {
                let fileName = NixHasher.hash(.sha256, nar).digest(.nix32) + ".nar"
                try await services.caches.stageNar(
                    in: cache, fileName: fileName, body: [ByteBuffer(bytes: nar)].async)
            }
            let outcomes = await withTaskGroup(of: (String, ServiceError?).self) { group in
                for nar in nars {
                    group.addTask {
                        let text = nar.narInfo(storePath: path.info.storePath)
                        do {
                            try await services.caches.putNarInfo(in: cache, hashPart: Self.hashPart(path), text: text)
                            return (nar.info.narHash, nil)
                        } catch let error as ServiceError {
                            return (nar.info.narHash, error)
                        } catch {
                            return (nar.info.narHash, ServiceError(.unavailable, "unexpected: \(error)"))
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let served = try NarInfo(
                parsing: try #require(try await services.caches.narInfo(in: cache, hashPart: Self.hashPart(path))))
            for (narHash, error) in outcomes {
                if narHash == served.narHash.narInfoString {
                    #expect(error == nil, "the winner's NAR, sent again, is not refused: \(String(describing: error))")
                } else {
                    #expect(error?.kind == .conflict)
                    #expect(error?.message.contains(served.narHash.narInfoString) == true)
                }
            }
            #expect(outcomes.filter { $0.1 == nil }.count == 2)
            #expect(try await Self.blobsAfterCollection(services) == [.nar(String(served.url.dropFirst(4)))])
            #expect(try await services.store.blobs.list(.staged).isEmpty)
        }
    }
}
