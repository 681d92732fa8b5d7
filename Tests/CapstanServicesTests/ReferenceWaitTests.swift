import CapstanModel
import CapstanServices
import CapstanStorage
import Compression
import Foundation
import NIOCore
import NixCore
import Synchronization
import Testing

/// Uploads that ask to wait for their references, on both databases: a dependent sent before its
/// reference is stored once the reference arrives and is never visible before; a wait ends at the
/// server's bound, when the pending bound leaves no room, or when its client goes away, storing
/// nothing and giving back its reserved space.
@Suite("Uploads waiting for their references")
struct ReferenceWaitTests {
    /// A library and a program that references it.
    static func chain(_ seed: String) -> (library: SampleNar, program: SampleNar) {
        let library = SampleNar(contents: "library \(seed)", name: "lib")
        var program = SampleNar(contents: "program \(seed)", name: "app")
        program.info.references = [library.info.storePath.path, program.info.storePath.path]
        return (library, program)
    }

    static func service(_ services: Services, _ limits: UploadLimits) -> CacheService {
        CacheService(
            store: services.store, blobs: services.store.blobs, publicURL: "http://capstan.test", maxNarSize: 1 << 30,
            uploadLimits: limits, logger: Services.logger)
    }

    /// Waits until the cache's pending bytes reach `bytes` (an upload checked its NAR and now waits).
    static func pending(_ services: Services, atLeast bytes: Int64) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while try await services.store.pendingUploadBytes(cacheID: services.cache.id) < bytes {
            try #require(ContinuousClock.now < deadline, "no upload began to wait")
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func visible(_ services: Services, _ nar: SampleNar) async throws -> Bool {
        try await services.caches.narInfo(in: services.cache, hashPart: nar.info.storePath.hashPart) != nil
    }

    /// Uploads `nar` through `caches`, waiting up to `timeout` for its references.
    static func waiting(
        _ nar: SampleNar, through caches: CacheService, into cache: CacheRecord, timeout: Duration = .seconds(120),
        clientGone: @escaping @Sendable () -> Bool = { false }
    ) -> Task<PathUploadResult, any Error> {
        Task {
            try await caches.upload(
                to: cache, info: nar.info, transit: .none, body: nar.body.async,
                awaitingReferences: ReferenceWait(timeout: timeout, clientGone: clientGone))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aDependentSentFirstIsStoredOnceItsReferenceArrives(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let (library, program) = Self.chain("arrives")
            // It looks again only every minute: only the news of the arrival can end its wait sooner.
            let caches = Self.service(services, UploadLimits(referenceRecheck: .seconds(60)))
            let cache = services.cache
            let waiting = Self.waiting(program, through: caches, into: cache)
            try await Self.pending(services, atLeast: 1)
            // Checked and held, yet not visible: no narinfo, and the missing query still lists it.
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await Self.visible(services, program) == false)
            let missing = try await caches.missing(in: cache, hashes: [program.info.storePath.hashPart])
            #expect(missing == [program.info.storePath.hashPart])
            let began = ContinuousClock.now
            _ = try await caches.upload(to: cache, info: library.info, transit: .none, body: library.body.async)
            let result = try await waiting.value
            #expect(ContinuousClock.now - began < .seconds(30))
            #expect(result.alreadyPresent == false)
            #expect(try await Self.visible(services, program))
            #expect(try await services.store.pendingUploadBytes(cacheID: cache.id) == 0)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aReferenceStoredByAnotherReplicaEndsTheWait(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let (library, program) = Self.chain("replica")
            // Each service has its own arrivals: the other one stands for a replica on the same database.
            let here = Self.service(services, UploadLimits(referenceRecheck: .milliseconds(200)))
            let cache = services.cache
            let waiting = Self.waiting(program, through: here, into: cache)
            try await Self.pending(services, atLeast: 1)
            _ = try await services.caches.upload(
                to: cache, info: library.info, transit: .none, body: library.body.async)
            #expect(try await waiting.value.alreadyPresent == false)
            #expect(try await Self.visible(services, program))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aReferenceThatNeverComesEndsTheWaitAtTheServersBound(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let (library, program) = Self.chain("never")
            let bounded = Self.service(services, UploadLimits(maxReferenceWait: .seconds(1)))
            let began = ContinuousClock.now
            // The client asks for an hour; the server holds it for its own bound only.
            let error = try await #require(throws: ServiceError.self) {
                try await bounded.upload(
                    to: services.cache, info: program.info, transit: .none, body: program.body.async,
                    awaitingReferences: ReferenceWait(timeout: .seconds(3600)))
            }
            #expect(ContinuousClock.now - began < .seconds(30))
            #expect(error.kind == .failedDependency)
            #expect(error.message.contains(library.info.storePath.path), "\(error.message)")
            #expect(error.message.contains("upload them first"), "\(error.message)")
            #expect(try await Self.visible(services, program) == false)
            #expect(try await services.store.pendingUploadBytes(cacheID: services.cache.id) == 0)
            // Its blob, put in place before the wait, is recorded as unused and goes with the next collection.
            #expect(try await services.store.orphanBlobNames().count == 1)
            _ = try await services.caches.collectGarbage(
                in: services.cache, dryRun: false, now: Date().addingTimeInterval(2 * 3600))
            #expect(try await services.store.blobs.list(.nars).isEmpty)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func waitingUploadsTogetherStayWithinThePendingBound(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let library = SampleNar(contents: "library never sent", name: "lib")
            let programs = (0..<6).map { index in
                var program = SampleNar(contents: String(repeating: "program \(index)\n", count: 1000), name: "app")
                program.info.references = [library.info.storePath.path]
                return program
            }
            // Each reserves its stored (zstd) size while it waits: room for two; the others are refused at once.
            let sizes = try programs.map { UInt64(try ZstdEncoder().transform($0.bytes).count) }
            let bound = 2 * sizes.max()! + sizes.min()! / 2
            #expect(3 * sizes.min()! > bound)
            let bounded = Self.service(services, UploadLimits(maxPendingBytesPerCache: bound))
            let cache = services.cache
            let refused = RefusalCount()
            let uploads = programs.map { program in
                Task { () -> ServiceError? in
                    do {
                        _ = try await Self.waiting(program, through: bounded, into: cache).value
                        return nil
                    } catch {
                        refused.count.add(1, ordering: .relaxed)
                        return error as? ServiceError ?? ServiceError(.unavailable, "unexpected: \(error)")
                    }
                }
            }
            // Two wait, holding their room until the library comes; the other four are refused meanwhile.
            let deadline = ContinuousClock.now + .seconds(60)
            while refused.count.load(ordering: .relaxed) < programs.count - 2 && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await services.store.pendingUploadBytes(cacheID: cache.id) > 0)
            _ = try await services.caches.upload(
                to: cache, info: library.info, transit: .none, body: library.body.async)
            var refusals: [ServiceError] = []
            for upload in uploads { if let refusal = await upload.value { refusals.append(refusal) } }
            #expect(refusals.count == programs.count - 2, "\(refusals.map(\.message))")
            #expect(
                refusals.allSatisfy { $0.kind == .failedDependency && $0.message.contains("max_pending_upload_bytes") })
            #expect(try await services.store.pendingUploadBytes(cacheID: cache.id) == 0)
            #expect(try await services.store.paths(cacheID: cache.id).count == 3)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aClientThatGoesAwayEndsTheWaitAndFreesItsSpace(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let (library, program) = Self.chain("gone")
            let gone = Atomic<Bool>(false)
            let caches = services.caches
            let cache = services.cache
            let waiting = Self.waiting(program, through: caches, into: cache, timeout: .seconds(600)) {
                gone.load(ordering: .relaxed)
            }
            try await Self.pending(services, atLeast: 1)
            let left = ContinuousClock.now
            gone.store(true, ordering: .relaxed)
            let error = try await #require(throws: ServiceError.self) { try await waiting.value }
            #expect(ContinuousClock.now - left < .seconds(20))
            #expect(error.message.contains("went away"), "\(error.message)")
            #expect(error.message.contains(library.info.storePath.path), "\(error.message)")
            #expect(try await services.store.pendingUploadBytes(cacheID: cache.id) == 0)
            // Its reference arriving later changes nothing: the dependent was not kept.
            _ = try await caches.upload(to: cache, info: library.info, transit: .none, body: library.body.async)
            #expect(try await Self.visible(services, program) == false)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func withoutTheWishReferencesAreNotChecked(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let (_, program) = Self.chain("unchecked")
            _ = try await services.caches.upload(
                to: services.cache, info: program.info, transit: .none, body: program.body.async)
            #expect(try await Self.visible(services, program))
        }
    }
}

/// How many uploads were refused, counted as they end.
final class RefusalCount: Sendable {
    let count = Atomic<Int>(0)
}
