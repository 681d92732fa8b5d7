import CapstanModel
import Foundation
import NixCore
import SQLKit

/// What garbage collection reads about one path: enough to decide and to report, not the narinfo.
public struct PathUsage: Sendable, Equatable {
    public var hashPart: String
    public var storePath: StorePath
    public var fileName: String
    public var fileSize: Int64
    public var narSize: Int64
    /// Milliseconds since 1970 of its last download or upload.
    public var lastAccessed: Int64

    public init(
        hashPart: String, storePath: StorePath, fileName: String, fileSize: Int64, narSize: Int64, lastAccessed: Int64
    ) {
        self.hashPart = hashPart
        self.storePath = storePath
        self.fileName = fileName
        self.fileSize = fileSize
        self.narSize = narSize
        self.lastAccessed = lastAccessed
    }
}

/// A store path an agent needs, and why: garbage collection keeps its closure.
public struct PinnedRoot: Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// What the agent runs now.
        case current
        /// One of its last successful deployments, which it can roll back to.
        case rollbackTarget(index: Int)
        /// A deployment not finished yet.
        case unfinished(index: Int, status: DeploymentStatus)
    }

    public var storePath: StorePath
    public var agentID: String
    public var agentName: String
    public var workspaceID: String
    public var reason: Reason

    public init(storePath: StorePath, agentID: String, agentName: String, workspaceID: String, reason: Reason) {
        self.storePath = storePath
        self.agentID = agentID
        self.agentName = agentName
        self.workspaceID = workspaceID
        self.reason = reason
    }
}

/// What became of a batch of orphan blobs.
public struct OrphanBlobOutcome: Sendable, Equatable {
    /// Deleted from the blob store, with their sizes.
    public var deleted: [(fileName: String, size: Int64)]
    /// A path uses them again: no longer orphans.
    public var inUse: [String]

    public init(deleted: [(fileName: String, size: Int64)] = [], inUse: [String] = []) {
        self.deleted = deleted
        self.inUse = inUse
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.deleted.map(\.fileName) == rhs.deleted.map(\.fileName) && lhs.deleted.map(\.size) == rhs.deleted.map(\.size)
            && lhs.inUse == rhs.inUse
    }
}

extension CapstanStore {
    // MARK: Settings

    /// Sets what the cache keeps; returns the cache as it is now.
    public func setCacheRetention(id: String, retentionSeconds: Int64?, maxSize: Int64?, keepGenerations: Int)
        async throws -> CacheRecord
    {
        let updated = try await describingFailure("configuring cache \(id)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE caches SET retention_seconds = \(bind: retentionSeconds), max_size = \(bind: maxSize),
                                      keep_generations = \(bind: keepGenerations)
                    WHERE id = \(bind: id)
                    RETURNING \(unsafeRaw: Self.cacheColumns)
                    """
                ).first().map(CacheRecord.init(row:))
            }
        }
        guard let updated else { throw StorageError.notFound(what: "cache", key: id) }
        return updated
    }

    /// Claims the periodic garbage collection of a cache for `now`, unless one ran after `cutoff`:
    /// replicas sharing the database run it once between them.
    public func claimGarbageCollection(cacheID: String, now: Date, unlessRunAfter cutoff: Date) async throws -> Bool {
        try await describingFailure("claiming garbage collection of cache \(cacheID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    UPDATE caches SET last_gc_at = \(bind: now.unixMilliseconds)
                    WHERE id = \(bind: cacheID) AND (last_gc_at IS NULL OR last_gc_at <= \(bind: cutoff.unixMilliseconds))
                    RETURNING id
                    """
                ).first() != nil
            }
        }
    }

    /// Records that garbage collection ran on the cache at `time` (a run asked for by hand).
    public func recordGarbageCollection(cacheID: String, at time: Date) async throws {
        try await describingFailure("recording garbage collection of cache \(cacheID)") {
            try await database.transaction { db in
                try await db.raw(
                    "UPDATE caches SET last_gc_at = \(bind: time.unixMilliseconds) WHERE id = \(bind: cacheID)"
                ).run()
            }
        }
    }

    // MARK: Use

    /// Marks paths as used at `time`: by hash part (narinfo requests) and by file (NAR downloads).
    public func recordPathAccess(cacheID: String, hashParts: [String], fileNames: [String], at time: Date) async throws
    {
        guard !hashParts.isEmpty || !fileNames.isEmpty else { return }
        let millis = time.unixMilliseconds
        try await describingFailure(
            "recording use of \(hashParts.count) paths and \(fileNames.count) files of cache \(cacheID)"
        ) {
            try await database.transaction { db in
                for (column, keys) in [("hash_part", hashParts), ("file_name", fileNames)] {
                    for chunk in Self.chunks(of: keys, size: Self.hashQueryChunkSize) {
                        let binds: [any Encodable & Sendable] = chunk
                        try await db.raw(
                            """
                            UPDATE paths SET last_accessed_at = \(bind: millis)
                            WHERE cache_id = \(bind: cacheID) AND \(unsafeRaw: column) IN (\(binds: binds))
                                  AND last_accessed_at < \(bind: millis)
                            """
                        ).run()
                    }
                }
            }
        }
    }

    /// Adds narinfo hits and misses to the counts of the hour `time` falls in.
    public func addRequestCounts(_ counts: [(cacheID: String, hits: Int, misses: Int)], at time: Date) async throws {
        guard !counts.isEmpty else { return }
        let hour = time.unixMilliseconds / 3_600_000
        try await describingFailure("counting requests of \(counts.count) caches") {
            try await database.transaction { db in
                for count in counts {
                    try await db.raw(
                        """
                        INSERT INTO cache_request_counts (cache_id, hour, hits, misses)
                        VALUES (\(bind: count.cacheID), \(bind: hour), \(bind: Int64(count.hits)),
                                \(bind: Int64(count.misses)))
                        ON CONFLICT (cache_id, hour) DO UPDATE
                        SET hits = cache_request_counts.hits + excluded.hits,
                            misses = cache_request_counts.misses + excluded.misses
                        """
                    ).run()
                }
            }
        }
    }

    /// narinfo hits and misses counted from the hour `since` falls in until now.
    public func requestCounts(cacheID: String, since: Date) async throws -> (hits: Int64, misses: Int64) {
        let hour = since.unixMilliseconds / 3_600_000
        return try await describingFailure("reading request counts of cache \(cacheID)") {
            let row = try await sql.raw(
                """
                SELECT CAST(COALESCE(SUM(hits), 0) AS BIGINT) AS hits,
                       CAST(COALESCE(SUM(misses), 0) AS BIGINT) AS misses
                FROM cache_request_counts WHERE cache_id = \(bind: cacheID) AND hour >= \(bind: hour)
                """
            ).first()
            guard let row else { return (0, 0) }
            return (try row.decode(column: "hits", as: Int64.self), try row.decode(column: "misses", as: Int64.self))
        }
    }

    /// Bytes of the distinct blobs the cache's paths are stored in, and of those also used by other caches.
    public func blobUsage(cacheID: String) async throws -> (stored: Int64, shared: Int64) {
        try await describingFailure("measuring the blobs of cache \(cacheID)") {
            let row = try await sql.raw(
                """
                SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS stored,
                       CAST(COALESCE(SUM(CASE WHEN shared THEN size ELSE 0 END), 0) AS BIGINT) AS shared
                FROM (
                    SELECT p.file_name, MAX(p.file_size) AS size,
                           EXISTS (SELECT 1 FROM paths o WHERE o.file_name = p.file_name
                                   AND o.cache_id <> \(bind: cacheID)) AS shared
                    FROM paths p WHERE p.cache_id = \(bind: cacheID) GROUP BY p.file_name
                ) AS blobs
                """
            ).first()
            guard let row else { return (0, 0) }
            return (try row.decode(column: "stored", as: Int64.self), try row.decode(column: "shared", as: Int64.self))
        }
    }

    // MARK: Garbage collection

    /// Every path of the cache with its size and last use. Rows are decoded as they arrive rather
    /// than held all at once: a cache may have hundreds of thousands.
    public func pathUsages(cacheID: String) async throws -> [PathUsage] {
        let usages = RowCollector<PathUsage>()
        try await describingFailure("reading path use of cache \(cacheID)") {
            try await sql.raw(
                """
                SELECT hash_part, store_path, file_name, file_size, nar_size, last_accessed_at
                FROM paths WHERE cache_id = \(bind: cacheID)
                """
            ).run { row in
                usages.add {
                    let hashPart = try row.decode(column: "hash_part", as: String.self)
                    return PathUsage(
                        hashPart: hashPart,
                        storePath: try row.decodeStorePath(column: "store_path", table: "paths", key: hashPart),
                        fileName: try row.decode(column: "file_name", as: String.self),
                        fileSize: try row.decode(column: "file_size", as: Int64.self),
                        narSize: try row.decode(column: "nar_size", as: Int64.self),
                        lastAccessed: try row.decode(column: "last_accessed_at", as: Int64.self))
                }
            }
        }
        return try usages.result()
    }

    /// Every edge of the cache's reference graph, by hash parts.
    public func referenceEdges(cacheID: String) async throws -> [(referrer: String, reference: String)] {
        let edges = RowCollector<(referrer: String, reference: String)>()
        try await describingFailure("reading the reference graph of cache \(cacheID)") {
            try await sql.raw(
                "SELECT referrer, reference FROM path_references WHERE cache_id = \(bind: cacheID)"
            ).run { row in
                edges.add {
                    (
                        try row.decode(column: "referrer", as: String.self),
                        try row.decode(column: "reference", as: String.self)
                    )
                }
            }
        }
        return try edges.result()
    }

    /// The store paths agents need, across all workspaces: each agent's current configuration, its
    /// last `keepGenerations` successful deployments, and every deployment not finished yet.
    public func pinnedRoots(keepGenerations: Int) async throws -> [PinnedRoot] {
        try await describingFailure("reading the configurations agents need") {
            try await Self.pinnedRoots(keepGenerations: keepGenerations, on: sql)
        }
    }

    private static func pinnedRoots(keepGenerations: Int, on db: any SQLDatabase) async throws -> [PinnedRoot] {
        do {
            var roots: [PinnedRoot] = []
            for row in try await db.raw(
                """
                SELECT id, name, workspace_id, current_store_path FROM agents WHERE current_store_path IS NOT NULL
                """
            ).all() {
                let agentID = try row.decode(column: "id", as: String.self)
                roots.append(
                    PinnedRoot(
                        storePath: try row.decodeStorePath(column: "current_store_path", table: "agents", key: agentID),
                        agentID: agentID,
                        agentName: try row.decode(column: "name", as: String.self),
                        workspaceID: try row.decode(column: "workspace_id", as: String.self), reason: .current))
            }
            let unfinished: [any Encodable & Sendable] = [
                DeploymentStatus.pending.rawValue, DeploymentStatus.inProgress.rawValue,
            ]
            for row in try await db.raw(
                """
                SELECT d.store_path, d.idx, d.status, a.id, a.name, a.workspace_id
                FROM deployments d JOIN agents a ON a.id = d.agent_id
                WHERE d.status IN (\(binds: unfinished))
                """
            ).all() {
                let status = try row.decode(column: "status", as: String.self)
                let agentID = try row.decode(column: "id", as: String.self)
                roots.append(
                    PinnedRoot(
                        storePath: try row.decodeStorePath(
                            column: "store_path", table: "deployments", key: "of agent \(agentID)"),
                        agentID: agentID,
                        agentName: try row.decode(column: "name", as: String.self),
                        workspaceID: try row.decode(column: "workspace_id", as: String.self),
                        reason: .unfinished(
                            index: try row.decode(column: "idx", as: Int.self),
                            status: DeploymentStatus(rawValue: status) ?? .pending)))
            }
            guard keepGenerations > 0 else { return roots }
            for row in try await db.raw(
                """
                SELECT s.store_path, s.idx, a.id, a.name, a.workspace_id
                FROM (
                    SELECT store_path, idx, agent_id,
                           ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY idx DESC) AS generation
                    FROM deployments WHERE status = \(bind: DeploymentStatus.succeeded.rawValue)
                ) AS s JOIN agents a ON a.id = s.agent_id
                WHERE s.generation <= \(bind: keepGenerations)
                """
            ).all() {
                let agentID = try row.decode(column: "id", as: String.self)
                roots.append(
                    PinnedRoot(
                        storePath: try row.decodeStorePath(
                            column: "store_path", table: "deployments", key: "of agent \(agentID)"),
                        agentID: agentID,
                        agentName: try row.decode(column: "name", as: String.self),
                        workspaceID: try row.decode(column: "workspace_id", as: String.self),
                        reason: .rollbackTarget(index: try row.decode(column: "idx", as: Int.self))))
            }
            return roots
        }
    }

    /// Removes paths of a cache (their narinfo and edges) in one transaction, and records as orphans
    /// the blobs no path of any cache uses any more. Returns the hash parts that were there.
    ///
    /// With `sparing`, what agents need is read inside that transaction and the hash parts its
    /// `keep` names stay: a deployment activated since the paths were chosen keeps its closure. On
    /// PostgreSQL deployments are locked against change until the transaction ends, so none can be
    /// created between that read and the removal (SQLite has one writer at a time anyway).
    @discardableResult
    public func removePaths(
        cacheID: String, hashParts: [String], at time: Date,
        sparing: (keepGenerations: Int, keep: @Sendable ([PinnedRoot]) -> Set<String>)? = nil
    ) async throws -> [String] {
        guard !hashParts.isEmpty else { return [] }
        let locksDeployments = database.backend == .postgres
        return try await describingFailure("removing \(hashParts.count) paths of cache \(cacheID)") {
            try await database.transaction { db in
                var going = hashParts
                if let sparing {
                    if locksDeployments { try await db.raw("LOCK TABLE deployments IN SHARE MODE").run() }
                    let kept = sparing.keep(
                        try await Self.pinnedRoots(keepGenerations: sparing.keepGenerations, on: db))
                    going.removeAll { kept.contains($0) }
                }
                var removed: [String] = []
                var files = Set<String>()
                for chunk in Self.chunks(of: going, size: Self.hashQueryChunkSize) {
                    let binds: [any Encodable & Sendable] = chunk
                    for row in try await db.raw(
                        """
                        DELETE FROM paths WHERE cache_id = \(bind: cacheID) AND hash_part IN (\(binds: binds))
                        RETURNING hash_part, file_name
                        """
                    ).all() {
                        removed.append(try row.decode(column: "hash_part", as: String.self))
                        files.insert(try row.decode(column: "file_name", as: String.self))
                    }
                    try await db.raw(
                        """
                        DELETE FROM path_references WHERE cache_id = \(bind: cacheID) AND referrer IN (\(binds: binds))
                        """
                    ).run()
                }
                try await Self.addOrphans(Array(files), at: time, unlessUsed: true, on: db)
                return removed
            }
        }
    }

    /// Records blobs as orphans since `time` (those already recorded keep their time).
    public func addOrphanBlobs(_ fileNames: [String], at time: Date) async throws {
        guard !fileNames.isEmpty else { return }
        try await describingFailure("recording \(fileNames.count) unused blobs") {
            try await database.transaction { db in
                try await Self.addOrphans(fileNames, at: time, unlessUsed: true, on: db)
            }
        }
    }

    private static func addOrphans(_ fileNames: [String], at time: Date, unlessUsed: Bool, on db: any SQLDatabase)
        async throws
    {
        for chunk in chunks(of: fileNames.sorted(), size: hashQueryChunkSize) {
            let binds: [any Encodable & Sendable] = chunk
            let used = Set(
                try await db.raw("SELECT DISTINCT file_name FROM paths WHERE file_name IN (\(binds: binds))")
                    .all(decodingColumn: "file_name", as: String.self))
            let orphans = chunk.filter { !used.contains($0) }
            guard !orphans.isEmpty else { continue }
            let rows = orphans.map { name -> SQLQueryString in "(\(bind: name), \(bind: time.unixMilliseconds))" }
            try await db.raw(
                """
                INSERT INTO blob_orphans (file_name, since) VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (file_name) DO NOTHING
                """
            ).run()
        }
    }

    /// Orphan blobs recorded at or before `cutoff` (due for deletion), and how many are younger.
    public func orphanBlobs(dueBy cutoff: Date) async throws -> (due: [String], waiting: Int) {
        try await describingFailure("listing unused blobs") {
            let rows = try await sql.raw("SELECT file_name, since FROM blob_orphans ORDER BY since").all()
            var due: [String] = []
            var waiting = 0
            for row in rows {
                if try row.decode(column: "since", as: Int64.self) <= cutoff.unixMilliseconds {
                    due.append(try row.decode(column: "file_name", as: String.self))
                } else {
                    waiting += 1
                }
            }
            return (due, waiting)
        }
    }

    /// Every blob recorded as an orphan.
    public func orphanBlobNames() async throws -> Set<String> {
        try await describingFailure("listing unused blobs") {
            Set(
                try await sql.raw("SELECT file_name FROM blob_orphans").all(
                    decodingColumn: "file_name", as: String.self))
        }
    }

    /// Whether the blob is recorded as an orphan (a read: the common case of an upload costs no write).
    public func isOrphanBlob(fileName: String) async throws -> Bool {
        try await describingFailure("looking up blob \(fileName)") {
            try await sql.raw("SELECT 1 AS orphan FROM blob_orphans WHERE file_name = \(bind: fileName)").first() != nil
        }
    }

    /// An upload is about to (re)write this blob: it is no orphan any more. Waits while a garbage
    /// collection is deleting it, so the upload's blob is written after that deletion, never before.
    public func reclaimOrphanBlob(fileName: String) async throws {
        try await describingFailure("reclaiming blob \(fileName)") {
            try await database.transaction { db in
                try await db.raw("DELETE FROM blob_orphans WHERE file_name = \(bind: fileName)").run()
            }
        }
    }

    /// Deletes the orphan blobs among `fileNames` still recorded at or before `cutoff` and used by no
    /// path, through `delete` (which returns the deleted blob's size, nil when it was already gone),
    /// holding their rows locked meanwhile: an upload reclaiming one of them waits until the
    /// transaction ends, and then writes its blob anew.
    public func deleteOrphanBlobs(
        _ fileNames: [String], dueBy cutoff: Date, delete: @escaping @Sendable (String) async throws -> Int64?
    ) async throws -> OrphanBlobOutcome {
        guard !fileNames.isEmpty else { return OrphanBlobOutcome() }
        let lock = database.backend == .postgres ? "ORDER BY file_name FOR UPDATE" : ""
        return try await describingFailure("deleting \(fileNames.count) unused blobs") {
            try await database.transaction { db in
                let binds: [any Encodable & Sendable] = fileNames
                let claimed = try await db.raw(
                    """
                    SELECT file_name FROM blob_orphans
                    WHERE file_name IN (\(binds: binds)) AND since <= \(bind: cutoff.unixMilliseconds)
                    \(unsafeRaw: lock)
                    """
                ).all(decodingColumn: "file_name", as: String.self)
                guard !claimed.isEmpty else { return OrphanBlobOutcome() }
                let claimedBinds: [any Encodable & Sendable] = claimed
                let used = Set(
                    try await db.raw("SELECT DISTINCT file_name FROM paths WHERE file_name IN (\(binds: claimedBinds))")
                        .all(decodingColumn: "file_name", as: String.self))
                var outcome = OrphanBlobOutcome()
                for name in claimed.sorted() {
                    if used.contains(name) {
                        outcome.inUse.append(name)
                    } else {
                        outcome.deleted.append((name, try await delete(name) ?? 0))
                    }
                }
                try await db.raw("DELETE FROM blob_orphans WHERE file_name IN (\(binds: claimedBinds))").run()
                return outcome
            }
        }
    }

    /// The file names among `fileNames` that some path of any cache uses.
    public func usedBlobs(among fileNames: [String]) async throws -> Set<String> {
        var used = Set<String>()
        for chunk in Self.chunks(of: fileNames, size: Self.hashQueryChunkSize) {
            let binds: [any Encodable & Sendable] = chunk
            try await describingFailure("checking whether \(chunk.count) blobs are in use") {
                used.formUnion(
                    try await sql.raw("SELECT DISTINCT file_name FROM paths WHERE file_name IN (\(binds: binds))")
                        .all(decodingColumn: "file_name", as: String.self))
            }
        }
        return used
    }
}

/// Values decoded from rows as a query streams them; the first decoding error is kept and thrown at the end.
final class RowCollector<Value>: @unchecked Sendable {
    // @unchecked: the query calls `add` from one event loop, one row after another; `result` runs after it.
    private var values: [Value] = []
    private var error: (any Error)?

    func add(_ decode: () throws -> Value) {
        guard error == nil else { return }
        do {
            values.append(try decode())
        } catch {
            self.error = error
        }
    }

    func result() throws -> [Value] {
        if let error { throw error }
        return values
    }
}
