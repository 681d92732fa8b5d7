import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NIOCore
import NixCore
import TestSupport
import Testing

/// What a cache keeps, in process, on both databases: retention from last use, the size bound,
/// paths pinned by agents with their closures, blobs deleted only after their grace period, `rm`
/// refusing what agents need, and verification finding (and hiding) broken NARs.
@Suite("Cache lifecycle")
struct CacheLifecycleTests {
    /// A path of the `fleet` cache made of one file, referring to other such paths.
    struct ToyPath {
        let nar: SampleNar
        var info: PathUploadInfo

        init(_ name: String, nonce: String = UUID().uuidString, refs: [ToyPath] = []) {
            nar = SampleNar(contents: "\(name) \(nonce)", name: name)
            info = nar.info
            info.references = refs.map(\.info.storePath.path)
        }

        var storePath: StorePath { info.storePath }
        var hashPart: String { storePath.hashPart }
    }

    static func push(_ services: Services, _ paths: [ToyPath], into cacheName: String = "fleet") async throws {
        let admin = try await services.principal(.admin)
        let cache = try await services.caches.writableCache(named: cacheName, by: admin)
        for path in paths {
            _ = try await services.caches.upload(to: cache, info: path.info, transit: .none, body: path.nar.body.async)
        }
    }

    static func hashParts(_ services: Services) async throws -> Set<String> {
        Set(try await services.store.paths(cacheID: services.cache.id).map(\.hashPart))
    }

    static func configure(_ services: Services, _ request: ConfigureCacheRequest) async throws -> CacheRecord {
        _ = try await services.caches.configure(cacheNamed: "fleet", request, by: try await services.principal(.admin))
        return try #require(try await services.store.cache(named: "fleet", workspaceID: services.workspace.id))
    }

    /// Deploys `path` to `agent` through the deploy service and has the agent report success.
    static func deploy(_ services: Services, _ agent: AgentRecord, _ path: StorePath) async throws {
        let response = try await services.deploy.activate(
            DeploySpec(agents: [agent.name: path]), by: try await services.principal(.activate))
        let id = try #require(response.agents[agent.name]?.id)
        #expect(try await services.deploy.agentStarted(agent, deploymentID: id, closureSize: 1))
        try await services.deploy.agentFinished(
            agent,
            outcome: DeploymentOutcome(id: id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: path))
    }

    @Test(arguments: DatabaseBackend.allCases)
    func configuringSetsAndClearsEachSettingAndOnlyAdminsMay(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let admin = try await services.principal(.admin)
            let info = try await services.caches.configure(
                cacheNamed: "fleet", ConfigureCacheRequest(retention: "30d", maxSize: "2G", keepGenerations: 5),
                by: admin)
            #expect(info.retention?.retention == TimeSpan(.seconds(30 * 86_400)))
            #expect(info.retention?.maxSize == 2 << 30)
            #expect(info.retention?.keepGenerations == 5)
            // Left out: unchanged; 'forever' and 'unlimited' clear.
            let cleared = try await services.caches.configure(
                cacheNamed: "fleet", ConfigureCacheRequest(retention: "forever"), by: admin)
            #expect(cleared.retention == CacheRetention(retention: nil, maxSize: 2 << 30, keepGenerations: 5))
            let unbounded = try await services.caches.configure(
                cacheNamed: "fleet", ConfigureCacheRequest(maxSize: "unlimited"), by: admin)
            #expect(unbounded.retention?.maxSize == nil)
            for bad in [
                ConfigureCacheRequest(retention: "soon"), ConfigureCacheRequest(maxSize: "-3G"),
                ConfigureCacheRequest(keepGenerations: -1),
            ] {
                let error = await #expect(throws: ServiceError.self) {
                    try await services.caches.configure(cacheNamed: "fleet", bad, by: admin)
                }
                #expect(error?.kind == .badRequest)
            }
            for kind in [TokenKind.push, .read, .activate] {
                let error = await #expect(throws: ServiceError.self) {
                    try await services.caches.configure(
                        cacheNamed: "fleet", ConfigureCacheRequest(retention: "1h"),
                        by: try await services.principal(kind))
                }
                #expect(error?.kind == .forbidden, "\(kind.rawValue)")
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func retentionCountsFromLastUseAndKeepsTheClosureOfWhatWasUsed(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let libUsed = ToyPath("lib-used")
            let appUsed = ToyPath("app-used", refs: [libUsed])
            let lonely = ToyPath("lonely")
            let pushedAt = Date()
            try await Self.push(services, [libUsed, appUsed, lonely])
            let cache = try await Self.configure(services, ConfigureCacheRequest(retention: "1h"))
            // Within the retention period nothing goes.
            let early = try await services.caches.collectGarbage(in: cache, dryRun: false, now: pushedAt)
            #expect(early.removed.isEmpty)
            // Nix reads app-used's narinfo 90 minutes later: it and its closure are used, `lonely` is not.
            let reader = try await services.principal(.read)
            let readable = try await services.caches.readableCache(named: "fleet", by: reader)
            #expect(try await services.caches.narInfo(in: readable, hashPart: appUsed.hashPart) != nil)
            await services.caches.flushAccessLog(at: pushedAt.addingTimeInterval(90 * 60))
            let dry = try await services.caches.collectGarbage(
                in: cache, dryRun: true, now: pushedAt.addingTimeInterval(2 * 3600))
            #expect(dry.removed.map(\.storePath) == [lonely.storePath])
            #expect(dry.removed.first?.reason == "expired")
            #expect(try await Self.hashParts(services).count == 3, "a dry run removes nothing")
            let report = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: pushedAt.addingTimeInterval(2 * 3600))
            #expect(report.removed.map(\.storePath) == [lonely.storePath])
            #expect(try await Self.hashParts(services) == [libUsed.hashPart, appUsed.hashPart])
            #expect(try await services.caches.narInfo(in: readable, hashPart: lonely.hashPart) == nil)
            // Long after, the whole unused closure goes, the referrer before what it refers to.
            let late = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: pushedAt.addingTimeInterval(10 * 3600))
            #expect(late.removed.map(\.storePath) == [appUsed.storePath, libUsed.storePath])
        }
    }

    /// A push asks which paths the cache lacks and skips the others: those count as used, so that a
    /// collection does not take them from under the closure being pushed.
    @Test(arguments: DatabaseBackend.allCases)
    func pathsAPushFindsPresentCountAsUsed(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let lib = ToyPath("lib")
            let pushedAt = Date()
            try await Self.push(services, [lib])
            let cache = try await Self.configure(services, ConfigureCacheRequest(retention: "1h"))
            let push = try await services.principal(.push)
            let writable = try await services.caches.writableCache(named: "fleet", by: push)
            let unknown = ToyPath("unknown").hashPart
            #expect(try await services.caches.missing(in: writable, hashes: [lib.hashPart, unknown]) == [unknown])
            await services.caches.flushAccessLog(at: pushedAt.addingTimeInterval(90 * 60))
            let report = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: pushedAt.addingTimeInterval(2 * 3600))
            #expect(report.removed.isEmpty)
            // Asking about a path is no narinfo request: the day's hits and misses are unchanged.
            let statistics = try await services.caches.statistics(of: cache)
            #expect(statistics.hitsLastDay == 0)
            #expect(statistics.missesLastDay == 0)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func agentsPinTheirCurrentRollbackAndPendingConfigurationsWithTheirClosures(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let shared = ToyPath("shared-lib")
            let configs = (1...4).map { n in
                let data = ToyPath("data-\(n)")
                return (data: data, top: ToyPath("system-\(n)", refs: [data, shared]))
            }
            try await Self.push(services, [shared] + configs.flatMap { [$0.data, $0.top] })
            let web1 = try await services.addAgent("web1")
            let web2 = try await services.addAgent("web2")
            // web1 ran system-1, now runs system-2 (system-1 is its rollback target); web2 has system-3 pending.
            try await Self.deploy(services, web1, configs[0].top.storePath)
            try await Self.deploy(services, web1, configs[1].top.storePath)
            _ = try await services.deploy.activate(
                DeploySpec(agents: ["web2": configs[2].top.storePath]), by: try await services.principal(.activate))
            _ = web2
            let cache = try await Self.configure(services, ConfigureCacheRequest(retention: "0s"))
            let report = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: Date().addingTimeInterval(1))
            // Only system-4's own paths go; the library it shares with pinned systems stays.
            #expect(Set(report.removed.map(\.storePath)) == [configs[3].top.storePath, configs[3].data.storePath])
            #expect(report.removed.first?.storePath == configs[3].top.storePath, "referrers go first")
            #expect(report.pinnedPaths == 7)
            #expect(report.keptPaths == 7)
            // Keeping one generation unpins web1's rollback target.
            let one = try await Self.configure(services, ConfigureCacheRequest(keepGenerations: 1))
            let next = try await services.caches.collectGarbage(
                in: one, dryRun: true, now: Date().addingTimeInterval(1))
            #expect(Set(next.removed.map(\.storePath)) == [configs[0].top.storePath, configs[0].data.storePath])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aSizeBoundEvictsTheLeastRecentlyUsedNeverBreakingAClosure(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let old = ToyPath("old")
            let lib = ToyPath("lib")
            let app = ToyPath("app", refs: [lib])
            let newest = ToyPath("newest")
            let start = Date()
            try await Self.push(services, [old, lib, app, newest])
            let reader = try await services.principal(.read)
            let readable = try await services.caches.readableCache(named: "fleet", by: reader)
            // Uses in this order: lib (alone), old, app, newest; app's use makes lib as recent as app.
            for (offset, path) in [lib, old, app, newest].enumerated() {
                _ = try await services.caches.narInfo(in: readable, hashPart: path.hashPart)
                await services.caches.flushAccessLog(at: start.addingTimeInterval(Double(offset + 1) * 60))
            }
            let sizes = Dictionary(
                uniqueKeysWithValues: try await services.store.pathUsages(cacheID: services.cache.id).map {
                    ($0.hashPart, $0.fileSize)
                })
            let total = sizes.values.reduce(0, +)
            let oldSize = try #require(sizes[old.hashPart])
            let cache = try await Self.configure(services, ConfigureCacheRequest(maxSize: "\(total - oldSize)"))
            let report = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: start.addingTimeInterval(600))
            #expect(report.removed.map(\.storePath) == [old.storePath])
            #expect(report.removed.first?.reason == "over max size")
            // Room for the newest path only: lib goes, and app (which needs it) before it.
            let newestSize = try #require(sizes[newest.hashPart])
            let tight = try await Self.configure(services, ConfigureCacheRequest(maxSize: "\(newestSize)"))
            let second = try await services.caches.collectGarbage(
                in: tight, dryRun: false, now: start.addingTimeInterval(600))
            #expect(second.removed.map(\.storePath) == [app.storePath, lib.storePath])
            #expect(try await Self.hashParts(services) == [newest.hashPart])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aRemovedPathsBlobGoesOnlyAfterTheGracePeriodAndOnlyWhenNoCacheUsesIt(backend: DatabaseBackend) async throws {
        let lifecycle = CacheLifecycleSettings(blobGrace: .seconds(600))
        try await Services.with(backend, lifecycle: lifecycle) { services in
            let admin = try await services.principal(.admin)
            _ = try await services.caches.create(CreateCacheRequest(name: "other", isPublic: false), by: admin)
            let shared = ToyPath("shared")
            let own = ToyPath("own")
            try await Self.push(services, [shared, own])
            try await Self.push(services, [shared], into: "other")
            let files = try await services.store.paths(cacheID: services.cache.id).map(\.fileName)
            #expect(Set(files).count == 2)
            #expect(try await services.store.blobs.list(.nars).count == 2, "the shared NAR is stored once")
            let cache = try await Self.configure(services, ConfigureCacheRequest(retention: "0s"))
            let now = Date().addingTimeInterval(1)
            let report = try await services.caches.collectGarbage(in: cache, dryRun: false, now: now)
            #expect(report.removed.count == 2)
            #expect(report.blobsDeleted == 0)
            #expect(report.blobsWaiting == 1, "only `own`'s blob is unused; `other` still uses the shared one")
            #expect(try await services.store.blobs.list(.nars).count == 2)
            // After the grace period (counted from when the blob became unused, by the real clock) the
            // unused blob goes, the shared one stays.
            let later = try await services.caches.collectGarbage(
                in: cache, dryRun: false, now: Date().addingTimeInterval(601))
            #expect(later.blobsDeleted == 1)
            #expect(later.blobBytesFreed > 0)
            let left = try await services.store.blobs.list(.nars)
            #expect(left.count == 1)
            let otherCache = try #require(
                try await services.store.cache(named: "other", workspaceID: services.workspace.id))
            let otherFile = try #require(try await services.store.paths(cacheID: otherCache.id).first?.fileName)
            #expect(left.first?.key == .nar(otherFile))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func anUploadOfAnUnusedBlobReclaimsItBeforeTheGracePeriodEnds(backend: DatabaseBackend) async throws {
        let lifecycle = CacheLifecycleSettings(blobGrace: .seconds(600))
        try await Services.with(backend, lifecycle: lifecycle) { services in
            let path = ToyPath("again")
            try await Self.push(services, [path])
            let cache = try await Self.configure(services, ConfigureCacheRequest(retention: "0s"))
            let now = Date().addingTimeInterval(1)
            _ = try await services.caches.collectGarbage(in: cache, dryRun: false, now: now)
            #expect(try await services.store.orphanBlobNames().count == 1)
            // The same NAR pushed again (here, the same path) dedups onto the blob and reclaims it.
            try await Self.push(services, [path])
            #expect(try await services.store.orphanBlobNames().isEmpty)
            let keepAll = try await services.store.setCacheRetention(
                id: cache.id, retentionSeconds: nil, maxSize: nil, keepGenerations: 3)
            let later = try await services.caches.collectGarbage(
                in: keepAll, dryRun: false, now: now.addingTimeInterval(3600))
            #expect(later.blobsDeleted == 0)
            let reader = try await services.principal(.read)
            let readable = try await services.caches.readableCache(named: "fleet", by: reader)
            let text = try #require(try await services.caches.narInfo(in: readable, hashPart: path.hashPart))
            let file = String(try NarInfo(parsing: text).url.dropFirst(4))
            #expect(try await services.caches.nar(in: readable, fileName: file) != nil)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func removingPathsRefusesWhatAgentsNeedNamingThemUnlessForced(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let lib = ToyPath("lib")
            let system = ToyPath("system", refs: [lib])
            let tool = ToyPath("tool", refs: [lib])
            let spare = ToyPath("spare")
            try await Self.push(services, [lib, system, tool, spare])
            let web1 = try await services.addAgent("web1")
            try await Self.deploy(services, web1, system.storePath)
            let admin = try await services.principal(.admin)
            let refused = await #expect(throws: ServiceError.self) {
                try await services.caches.removePaths(
                    RemovePathsRequest(paths: [lib.storePath.path]), fromCacheNamed: "fleet", by: admin)
            }
            #expect(refused?.kind == .conflict)
            #expect(refused?.message.contains("agent 'web1'") == true, "\(refused?.message ?? "")")
            #expect(refused?.message.contains("current configuration") == true)
            #expect(try await Self.hashParts(services).count == 4, "a refusal removes nothing")
            // A path nobody needs goes, with nothing else.
            let spareReport = try await services.caches.removePaths(
                RemovePathsRequest(paths: [spare.storePath.path]), fromCacheNamed: "fleet", by: admin)
            #expect(spareReport.removed.map(\.storePath) == [spare.storePath])
            // Forced: the library goes with every path that refers to it, referrers first.
            let forced = try await services.caches.removePaths(
                RemovePathsRequest(paths: [lib.storePath.baseName], force: true), fromCacheNamed: "fleet",
                by: admin)
            #expect(Set(forced.removed.prefix(2).map(\.storePath)) == [system.storePath, tool.storePath])
            #expect(forced.removed.last?.storePath == lib.storePath)
            #expect(forced.removed.last?.reason == "requested")
            #expect(try await Self.hashParts(services).isEmpty)
            // Unknown paths and other tokens are refused.
            let unknown = await #expect(throws: ServiceError.self) {
                try await services.caches.removePaths(
                    RemovePathsRequest(paths: [spare.storePath.path]), fromCacheNamed: "fleet", by: admin)
            }
            #expect(unknown?.kind == .notFound)
            let push = await #expect(throws: ServiceError.self) {
                try await services.caches.removePaths(
                    RemovePathsRequest(paths: [spare.storePath.path]), fromCacheNamed: "fleet",
                    by: try await services.principal(.push))
            }
            #expect(push?.kind == .forbidden)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aRemovedNarinfoIsNotServedFromMemory(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let path = ToyPath("memo")
            try await Self.push(services, [path])
            let reader = try await services.principal(.read)
            let readable = try await services.caches.readableCache(named: "fleet", by: reader)
            #expect(try await services.caches.narInfo(in: readable, hashPart: path.hashPart) != nil)
            #expect(try await services.caches.narInfo(in: readable, hashPart: path.hashPart) != nil)
            _ = try await services.caches.removePaths(
                RemovePathsRequest(paths: [path.storePath.path]), fromCacheNamed: "fleet",
                by: try await services.principal(.admin))
            #expect(try await services.caches.narInfo(in: readable, hashPart: path.hashPart) == nil)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func verificationFindsMissingAndCorruptNarsAndRepairHidesThem(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let good = ToyPath("good")
            let missing = ToyPath("missing")
            let corrupt = ToyPath("corrupt")
            try await Self.push(services, [good, missing, corrupt])
            let blobs = try #require(services.store.blobs as? FileBlobStore)
            let records = Dictionary(
                uniqueKeysWithValues: try await services.store.paths(cacheID: services.cache.id).map {
                    ($0.hashPart, $0)
                })
            let missingFile = try #require(records[missing.hashPart]?.fileName)
            let corruptFile = try #require(records[corrupt.hashPart]?.fileName)
            try blobs.delete(.nar(missingFile))
            // Same size, one byte changed: only the hashes can tell.
            let corruptPath = try blobs.path(of: .nar(corruptFile))
            var bytes = try Data(contentsOf: URL(fileURLWithPath: corruptPath))
            bytes[bytes.count / 2] ^= 0x01
            try bytes.write(to: URL(fileURLWithPath: corruptPath))
            let admin = try await services.principal(.admin)
            let steps = Steps()
            let report = try await services.caches.verify(services.cache, repair: false, by: admin) {
                await steps.add($0)
            }
            #expect(report.checkedPaths == 3)
            #expect(report.checkedBlobs == 3)
            #expect(Set(report.problems.map(\.storePath)) == [missing.storePath, corrupt.storePath])
            #expect(report.problems.allSatisfy { !$0.hidden })
            let missingProblem = report.problems.first { $0.storePath == missing.storePath }?.problem ?? ""
            #expect(missingProblem.contains("missing"))
            #expect(await steps.last?.checkedBlobs == 3)
            #expect(try await Self.hashParts(services).count == 3, "without --repair nothing is hidden")
            let repaired = try await services.caches.verify(services.cache, repair: true, by: admin)
            #expect(repaired.problems.allSatisfy { $0.hidden })
            #expect(try await Self.hashParts(services) == [good.hashPart])
            let clean = try await services.caches.verify(services.cache, repair: false, by: admin)
            #expect(clean.problems.isEmpty)
            let refused = await #expect(throws: ServiceError.self) {
                try await services.caches.verify(services.cache, repair: false, by: try await services.principal(.push))
            }
            #expect(refused?.kind == .forbidden)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func statisticsCountHitsMissesDedupAndWhatTheNextCollectionWouldRemove(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let admin = try await services.principal(.admin)
            _ = try await services.caches.create(CreateCacheRequest(name: "other", isPublic: false), by: admin)
            let one = ToyPath("one")
            let two = ToyPath("two")
            try await Self.push(services, [one, two])
            try await Self.push(services, [one], into: "other")
            let reader = try await services.principal(.read)
            let readable = try await services.caches.readableCache(named: "fleet", by: reader)
            for _ in 0..<3 { _ = try await services.caches.narInfo(in: readable, hashPart: one.hashPart) }
            _ = try await services.caches.narInfo(in: readable, hashPart: String(repeating: "0", count: 32))
            let cache = try await Self.configure(services, ConfigureCacheRequest(retention: "0s"))
            let info = try await services.caches.detailedInfo(cache, by: admin)
            let statistics = try #require(info.statistics)
            let usages = try await services.store.pathUsages(cacheID: cache.id)
            let total = usages.reduce(0) { $0 + $1.fileSize }
            #expect(statistics.pathCount == 2)
            #expect(statistics.storedBytes == total)
            #expect(statistics.sharedBytes == usages.first { $0.hashPart == one.hashPart }?.fileSize)
            #expect(statistics.hitsLastDay == 3)
            #expect(statistics.missesLastDay == 1)
            // `one` was read a moment ago: with a retention of 0 s only `two` would go.
            #expect(statistics.nextGC?.paths == 1)
            #expect(statistics.nextGC?.fileBytes == usages.first { $0.hashPart == two.hashPart }?.fileSize)
            // Readers see the cache without the figures that take a walk of the whole graph.
            #expect(try await services.caches.detailedInfo(cache, by: reader).statistics == nil)
        }
    }
}

actor Steps {
    private(set) var all: [VerifyProgress] = []
    func add(_ step: VerifyProgress) { all.append(step) }
    var last: VerifyProgress? { all.last }
}
