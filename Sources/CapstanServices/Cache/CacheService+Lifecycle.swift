import CapstanModel
import CapstanStorage
import Foundation

/// What a cache keeps, and for how long: retention from a path's last use, a size bound, the
/// agents' configurations pinned with their closures, and garbage collection of the rest.
extension CacheService {
    /// The cache, if the caller may manage it (its workspace's admin).
    public func managedCache(named name: String, by principal: Principal) async throws -> CacheRecord {
        guard let cache = try await cache(named: name, for: principal) else {
            throw ServiceError.notFound("cache '\(name)' does not exist")
        }
        try AccessPolicy.require(.manageCache(cache), by: principal)
        return cache
    }

    /// The names of the caches whose settings the caller may change (shown with a link on the dashboard).
    public func managedCacheNames(by principal: Principal) async throws -> Set<String> {
        Set(
            try await store.caches(workspaceID: principal.workspaceID)
                .filter { AccessPolicy.allows(principal, .manageCache($0)) }.map(\.name))
    }

    /// Changes what the cache keeps; fields the request leaves out stay as they are.
    public func configure(cacheNamed name: String, _ request: ConfigureCacheRequest, by principal: Principal)
        async throws -> CacheInfo
    {
        let cache = try await managedCache(named: name, by: principal)
        var retention = cache.retentionSeconds
        var maxSize = cache.maxSize
        var keepGenerations = cache.keepGenerations
        if let text = request.retention {
            if ["forever", "never", "none"].contains(text.lowercased()) {
                retention = nil
            } else if let span = TimeSpan(parsing: text) {
                retention = Int64(span.seconds.rounded())
            } else {
                throw ServiceError.badRequest(
                    "retention '\(text)': expected a duration such as 30d, 12h, 90m or 0s, or 'forever'")
            }
        }
        if let text = request.maxSize {
            if ["unlimited", "none"].contains(text.lowercased()) {
                maxSize = nil
            } else if let size = ByteSize(parsing: text) {
                maxSize = size.bytes
            } else {
                throw ServiceError.badRequest(
                    "max size '\(text)': expected a size such as 500M or 20GiB, or 'unlimited'")
            }
        }
        if let generations = request.keepGenerations {
            guard (0...1000).contains(generations) else {
                throw ServiceError.badRequest("keep generations \(generations): expected 0 to 1000")
            }
            keepGenerations = generations
        }
        let updated = try await store.setCacheRetention(
            id: cache.id, retentionSeconds: retention, maxSize: maxSize, keepGenerations: keepGenerations)
        await forget(cacheID: cache.id)
        let detail =
            "retention \(retention.map { TimeSpan(.seconds($0)).description } ?? "forever"), "
            + "max size \(maxSize.map { "\($0) bytes" } ?? "unlimited"), keep \(keepGenerations) generations"
        logger.info("cache configured", metadata: ["cache": "\(name)", "settings": "\(detail)"])
        await audit.record(.cacheConfigured, by: principal, target: name, detail: detail)
        return try await info(updated)
    }

    /// Drops what this replica and, through the event bus, every other replica remembers of the cache.
    func forget(cacheID: String) async {
        memo.forget(cacheID: cacheID)
        await events?.publish(.cacheChanged(cacheID: cacheID))
    }

    /// Follows cache events from other replicas for the server's life, forgetting what they changed.
    public func followCacheEvents() async {
        guard let events else { return }
        for await event in events.subscribe() {
            if case .cacheChanged(let cacheID) = event { memo.forget(cacheID: cacheID) }
        }
    }

    // MARK: Garbage collection

    /// Collects the cache's garbage (or, with `dryRun`, says what would go), by hand.
    public func collectGarbage(cacheNamed name: String, dryRun: Bool, by principal: Principal) async throws
        -> GCReport
    {
        let cache = try await managedCache(named: name, by: principal)
        // Recorded first: the periodic collection leaves the cache alone meanwhile (and after an interruption).
        if !dryRun { try await store.recordGarbageCollection(cacheID: cache.id, at: Date()) }
        let report = try await collectGarbage(in: cache, dryRun: dryRun)
        if !dryRun {
            let summary = report.summary
            await audit.record(
                .cacheCollected, by: principal, target: name,
                detail: "\(summary.paths) paths, \(summary.fileBytes) bytes; \(report.blobsDeleted) blobs deleted")
        }
        return report
    }

    /// Removes what the cache's retention and size bound let go, never a path in the closure of
    /// what an agent needs, then deletes the blobs no path uses whose grace period is over.
    public func collectGarbage(in cache: CacheRecord, dryRun: Bool, now: Date = Date()) async throws -> GCReport {
        // Uses gathered in memory count: a path read a second ago is not expired.
        await flushAccessLog()
        return try await collectGarbage(in: cache, as: try await plan(cache, now: now), dryRun: dryRun, now: now)
    }

    /// Carries out a collection planned a moment ago; what agents have needed since is spared.
    func collectGarbage(
        in cache: CacheRecord, as plan: (plan: GarbageCollectionPlan, pinned: Set<String>), dryRun: Bool, now: Date
    ) async throws -> GCReport {
        var removed: [RemovedPath] = []
        if !dryRun && !plan.plan.removals.isEmpty {
            removed = try await remove(
                plan.plan.removals, of: plan.plan.graph, from: cache,
                sparing: (keepGenerations: cache.keepGenerations, pinnedWhenPlanned: plan.pinned))
        } else {
            removed = plan.plan.removals.map { removal in
                let path = plan.plan.graph.paths[removal.index]
                return RemovedPath(
                    storePath: path.storePath, narSize: path.narSize, fileSize: path.fileSize, reason: removal.reason)
            }
        }
        var report = GCReport(
            cache: cache.name, dryRun: dryRun, removed: removed,
            keptPaths: plan.plan.graph.paths.count - removed.count,
            pinnedPaths: plan.plan.pinnedCount)
        if dryRun {
            report.blobsWaiting = try await store.orphanBlobs(
                dueBy: now.addingTimeInterval(-lifecycle.blobGrace.timeInterval)
            )
            .waiting
        } else {
            let blobs = try await deleteUnusedBlobs(now: now)
            report.blobsDeleted = blobs.deleted
            report.blobBytesFreed = blobs.bytes
            report.blobsWaiting = blobs.waiting
        }
        if !dryRun && (!removed.isEmpty || report.blobsDeleted > 0) {
            logger.info(
                "garbage collected",
                metadata: [
                    "cache": "\(cache.name)", "paths": "\(removed.count)",
                    "fileBytes": "\(report.summary.fileBytes)", "blobsDeleted": "\(report.blobsDeleted)",
                    "blobBytes": "\(report.blobBytesFreed)",
                ])
        }
        return report
    }

    /// What garbage collection would remove now, without removing it.
    public func nextGarbageCollection(in cache: CacheRecord, now: Date = Date()) async throws -> GCSummary {
        let plan = try await plan(cache, now: now).plan
        return GCSummary(
            paths: plan.removals.count, narBytes: plan.removals.reduce(0) { $0 + plan.graph.paths[$1.index].narSize },
            fileBytes: plan.removals.reduce(0) { $0 + plan.graph.paths[$1.index].fileSize })
    }

    func plan(_ cache: CacheRecord, now: Date) async throws -> (
        plan: GarbageCollectionPlan, pinned: Set<String>
    ) {
        let pinned = try await pinnedHashParts(keepGenerations: cache.keepGenerations)
        let graph = PathGraph(
            paths: try await store.pathUsages(cacheID: cache.id),
            edges: try await store.referenceEdges(cacheID: cache.id))
        let cutoff = cache.retentionSeconds.map { now.addingTimeInterval(-Double($0)).unixMilliseconds }
        return (
            GarbageCollectionPlan(graph: graph, pinned: pinned, retentionCutoff: cutoff, maxSize: cache.maxSize), pinned
        )
    }

    private func pinnedHashParts(keepGenerations: Int) async throws -> Set<String> {
        Set(
            try await store.pinnedRoots(keepGenerations: keepGenerations).map(\.storePath.hashPart))
    }

    /// Removes paths in the given order (referrers first), in chunks, so that an interruption
    /// leaves a cache whose every remaining path still has its references and its NAR. With
    /// `sparing`, what agents need is read again inside each chunk's transaction: a deployment
    /// created since the plan keeps its closure (whatever of it is still there).
    private func remove(
        _ removals: [(index: Int, reason: String)], of graph: PathGraph, from cache: CacheRecord,
        sparing: (keepGenerations: Int, pinnedWhenPlanned: Set<String>)? = nil
    ) async throws -> [RemovedPath] {
        var removed: [RemovedPath] = []
        let keep = sparing.map { sparing in
            (
                keepGenerations: sparing.keepGenerations,
                keep: { @Sendable (roots: [PinnedRoot]) -> Set<String> in
                    let pinned = Set(roots.map(\.storePath.hashPart))
                    // The plan already kept the closure of what was pinned then.
                    guard !pinned.isSubset(of: sparing.pinnedWhenPlanned) else { return [] }
                    let closure = graph.closure(of: pinned.compactMap { graph.index[$0] })
                    return Set(graph.paths.indices.filter { closure[$0] }.map { graph.paths[$0].hashPart })
                }
            )
        }
        for start in stride(from: 0, to: removals.count, by: Self.removalChunk) {
            let chunk = removals[start..<min(start + Self.removalChunk, removals.count)]
            // Blobs become orphans now, whatever time the collection was planned for: the grace period
            // counts from here.
            let gone = Set(
                try await store.removePaths(
                    cacheID: cache.id, hashParts: chunk.map { graph.paths[$0.index].hashPart }, at: Date(),
                    sparing: keep))
            await forget(cacheID: cache.id)
            for removal in chunk where gone.contains(graph.paths[removal.index].hashPart) {
                let path = graph.paths[removal.index]
                removed.append(
                    RemovedPath(
                        storePath: path.storePath, narSize: path.narSize, fileSize: path.fileSize,
                        reason: removal.reason
                    ))
            }
        }
        return removed
    }

    /// Paths removed per transaction: large enough that commits (each a WAL sync on SQLite) do not
    /// dominate, small enough that a transaction holds the write lock for well under a second.
    static let removalChunk = 5000
    /// Orphan blobs deleted per transaction, their rows locked meanwhile.
    static let blobDeletionChunk = 500

    /// Deletes blobs no path of any cache uses: those recorded as orphans longer than the grace
    /// period ago, after recording the ones found unused in the blob store without a record (an
    /// upload interrupted before its path was stored).
    func deleteUnusedBlobs(now: Date = Date()) async throws -> (deleted: Int, bytes: Int64, waiting: Int) {
        let grace = lifecycle.blobGrace.timeInterval
        let cutoff = now.addingTimeInterval(-grace)
        let known = try await store.orphanBlobNames()
        var unrecorded: [String] = []
        for entry in try await blobs.list(.nars) where entry.modified < cutoff {
            guard case .nar(let name) = entry.key, !known.contains(name) else { continue }
            unrecorded.append(name)
        }
        if !unrecorded.isEmpty {
            let used = try await store.usedBlobs(among: unrecorded)
            try await store.addOrphanBlobs(unrecorded.filter { !used.contains($0) }, at: Date())
        }
        let (due, waiting) = try await store.orphanBlobs(dueBy: cutoff)
        var deleted = 0
        var bytes: Int64 = 0
        let blobs = blobs
        for start in stride(from: 0, to: due.count, by: Self.blobDeletionChunk) {
            let outcome = try await store.deleteOrphanBlobs(
                Array(due[start..<min(start + Self.blobDeletionChunk, due.count)]), dueBy: cutoff
            ) {
                name in
                let size = try await blobs.size(of: .nar(name))
                return try await blobs.delete(.nar(name)) ? size ?? 0 : nil
            }
            deleted += outcome.deleted.filter { $0.size > 0 }.count
            bytes += outcome.deleted.reduce(0) { $0 + $1.size }
        }
        return (deleted, bytes, waiting)
    }

    // MARK: Removing paths by hand

    /// Removes the named paths and every path of the cache that refers to them (a closure left
    /// without them would be broken). Paths agents need are refused, naming the agents, unless forced.
    public func removePaths(_ request: RemovePathsRequest, fromCacheNamed name: String, by principal: Principal)
        async throws -> GCReport
    {
        let cache = try await managedCache(named: name, by: principal)
        guard !request.paths.isEmpty else { throw ServiceError.badRequest("name at least one store path to remove") }
        let graph = PathGraph(
            paths: try await store.pathUsages(cacheID: cache.id),
            edges: try await store.referenceEdges(cacheID: cache.id))
        var targets: [Int] = []
        var unknown: [String] = []
        for path in request.paths {
            guard let hashPart = PathGraph.hashPart(of: path) else {
                throw ServiceError.badRequest("'\(path)' is not a store path, a store path's base name or its hash")
            }
            if let index = graph.index[hashPart] { targets.append(index) } else { unknown.append(path) }
        }
        guard unknown.isEmpty else {
            throw ServiceError.notFound(
                "cache '\(name)' does not hold " + unknown.joined(separator: ", ") + "; nothing was removed")
        }
        let going = graph.referrerClosure(of: targets)
        let requested = Set(targets)
        if !request.force {
            let refusals = try await pinningAgents(
                of: going, in: graph, keepGenerations: cache.keepGenerations, for: principal)
            if !refusals.isEmpty {
                throw ServiceError.conflict(
                    "agents need these paths; pass --force to remove them anyway (nothing was removed):\n"
                        + refusals.joined(separator: "\n"))
            }
        }
        let removals = graph.order.compactMap { i -> (index: Int, reason: String)? in
            guard going[Int(i)] else { return nil }
            return (Int(i), requested.contains(Int(i)) ? "requested" : "refers to a removed path")
        }
        let removed: [RemovedPath]
        if request.dryRun {
            removed = removals.map {
                let path = graph.paths[$0.index]
                return RemovedPath(
                    storePath: path.storePath, narSize: path.narSize, fileSize: path.fileSize, reason: $0.reason)
            }
        } else {
            removed = try await remove(removals, of: graph, from: cache)
            await audit.record(
                .cachePathsRemoved, by: principal, target: name,
                detail: "\(removed.count) paths" + (request.force ? " (forced)" : ""))
        }
        let pinned = graph.closure(
            of: try await pinnedHashParts(keepGenerations: cache.keepGenerations).compactMap { graph.index[$0] })
        return GCReport(
            cache: name, dryRun: request.dryRun, removed: removed, keptPaths: graph.paths.count - removed.count,
            pinnedPaths: pinned.reduce(0) { $0 + ($1 ? 1 : 0) })
    }

    /// One line per path among `paths` that an agent needs: which path, which agent, and why.
    private func pinningAgents(
        of paths: [Bool], in graph: PathGraph, keepGenerations: Int, for principal: Principal
    ) async throws -> [String] {
        var lines: [String] = []
        for root in try await store.pinnedRoots(keepGenerations: keepGenerations) {
            guard let index = graph.index[root.storePath.hashPart] else { continue }
            let closure = graph.closure(of: [index])
            let needed = graph.paths.indices.filter { paths[$0] && closure[$0] }
            guard !needed.isEmpty else { continue }
            let agent =
                root.workspaceID == principal.workspaceID
                ? "agent '\(root.agentName)'" : "an agent of another workspace"
            let why: String
            switch root.reason {
            case .current: why = "its current configuration"
            case .rollbackTarget(let index): why = "deployment #\(index), a rollback target"
            case .unfinished(let index, let status): why = "deployment #\(index), \(status.rawValue)"
            }
            for i in needed.prefix(20) {
                lines.append("\(graph.paths[i].storePath): needed by \(agent) (\(why): \(root.storePath))")
            }
            if needed.count > 20 { lines.append("… and \(needed.count - 20) more paths needed by \(agent) (\(why))") }
        }
        return lines
    }

    // MARK: Maintenance

    /// Every path and request use gathered in memory, written now (at shutdown, and before a collection).
    public func flushAccessLog(at time: Date = Date()) async {
        do {
            try await accessLog.flush(to: store, at: time)
        } catch {
            logger.warning("could not record path uses", metadata: ["error": "\(error)"])
        }
    }

    /// For the server's life: writes path uses every `accessFlushInterval` and collects every
    /// cache's garbage every `gcInterval` (one replica per cache and interval, through the database).
    public func runMaintenance() async {
        var nextCollection = ContinuousClock.now
        while !Task.isCancelled {
            await flushAccessLog()
            if ContinuousClock.now >= nextCollection {
                await collectAllGarbage()
                nextCollection = .now + lifecycle.gcInterval
            }
            try? await Task.sleep(
                for: min(lifecycle.accessFlushInterval, max(.milliseconds(10), nextCollection - .now)))
        }
        await flushAccessLog()
    }

    /// One periodic pass: every cache whose collection is due, then the unused blobs.
    func collectAllGarbage(now: Date = Date()) async {
        do {
            let cutoff = now.addingTimeInterval(-lifecycle.gcInterval.timeInterval * 0.9)
            for cache in try await store.allCaches()
            where cache.retentionSeconds != nil || cache.maxSize != nil {
                guard try await store.claimGarbageCollection(cacheID: cache.id, now: now, unlessRunAfter: cutoff) else {
                    continue
                }
                _ = try await collectGarbage(in: cache, dryRun: false, now: now)
            }
            _ = try await deleteUnusedBlobs(now: now)
        } catch {
            logger.error("garbage collection failed", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Statistics

    /// The cache with its statistics when the caller may write to it (computing them reads the
    /// whole reference graph, which anonymous readers of a public cache should not be able to ask for).
    public func detailedInfo(_ cache: CacheRecord, by principal: Principal?) async throws -> CacheInfo {
        var result = try await info(cache)
        if let principal, AccessPolicy.allows(principal, .writeCache(cache)) {
            let fresh = try await store.cache(id: cache.id) ?? cache
            result = try await info(fresh)
            result.statistics = try await statistics(of: fresh)
        }
        return result
    }

    public func statistics(of cache: CacheRecord, now: Date = Date()) async throws -> CacheStatistics {
        await flushAccessLog()
        let stats = try await store.stats(cacheID: cache.id)
        let usage = try await store.blobUsage(cacheID: cache.id)
        let counts = try await store.requestCounts(cacheID: cache.id, since: now.addingTimeInterval(-86_400))
        let next =
            cache.retentionSeconds != nil || cache.maxSize != nil
            ? try await nextGarbageCollection(in: cache, now: now) : nil
        return CacheStatistics(
            pathCount: stats.pathCount, storedBytes: usage.stored,
            dedupSavedBytes: max(0, stats.fileSize - usage.stored),
            sharedBytes: usage.shared, hitsLastDay: counts.hits, missesLastDay: counts.misses,
            nextGC: next ?? GCSummary(paths: 0, narBytes: 0, fileBytes: 0))
    }
}
