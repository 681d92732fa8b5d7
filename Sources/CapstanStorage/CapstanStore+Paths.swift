import Foundation
import NixCore
import SQLKit

extension CapstanStore {
    /// Hashes per `IN (...)` query: far below SQLite's and PostgreSQL's bind limits, and cheap to plan.
    static let hashQueryChunkSize = 500

    /// The hash parts among `hashes` that the cache does not hold, in input order, each once.
    public func missingHashes(cacheID: String, hashes: [String]) async throws -> [String] {
        var seen = Set<String>()
        let unique = hashes.filter { seen.insert($0).inserted }
        var present = Set<String>()
        var start = unique.startIndex
        while start < unique.endIndex {
            let end = min(start + Self.hashQueryChunkSize, unique.endIndex)
            let chunk: [any Encodable & Sendable] = Array(unique[start..<end])
            let found = try await describingFailure(
                "checking \(chunk.count) paths of cache \(cacheID) (from \(unique[start]))"
            ) {
                try await sql.raw(
                    """
                    SELECT hash_part FROM paths
                    WHERE cache_id = \(bind: cacheID) AND hash_part IN (\(binds: chunk))
                    """
                ).all(decodingColumn: "hash_part", as: String.self)
            }
            present.formUnion(found)
            start = end
        }
        return unique.filter { !present.contains($0) }
    }

    public func path(cacheID: String, hashPart: String) async throws -> PathRecord? {
        try await describingFailure("looking up path \(hashPart) in cache \(cacheID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.pathColumns) FROM paths
                WHERE cache_id = \(bind: cacheID) AND hash_part = \(bind: hashPart)
                """
            ).first().map(PathRecord.init(row:))
        }
    }

    /// The path whose NAR is stored in `fileName` (the first, should several share a blob).
    public func path(cacheID: String, fileName: String) async throws -> PathRecord? {
        try await describingFailure("looking up file \(fileName) in cache \(cacheID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.pathColumns) FROM paths
                WHERE cache_id = \(bind: cacheID) AND file_name = \(bind: fileName)
                ORDER BY hash_part LIMIT 1
                """
            ).first().map(PathRecord.init(row:))
        }
    }

    /// Records a path and its edges in the reference graph, together. Returns false, and changes
    /// nothing, when the cache already has the path: uploads of the same path may race, one wins.
    @discardableResult
    public func insertPath(_ record: PathRecord) async throws -> Bool {
        if case .inserted = try await insertPath(record, whileInTime: { true }) { return true }
        return false
    }

    /// Records a path unless the cache already has one of that hash part, deciding in one
    /// transaction which upload wins; a loser gets the row that won. The transaction only records
    /// rows: the winner's blob is already in place under its key, so a slow blob store never holds
    /// the database's write lock. `inTime` is asked inside the transaction, just before it commits;
    /// when it says no, the path is still recorded if `blobIsThere` says its blob is, asked while
    /// holding the blob's orphan record (if any) so that no deletion of it can be under way or start
    /// before the commit (SQLite has one writer at a time anyway); otherwise nothing is recorded and
    /// the answer is `.tooLate`. With `requiringReferences`, the path is recorded only if the cache
    /// holds every path it references, read in the same transaction; otherwise `.referencesMissing`.
    public func insertPath(
        _ record: PathRecord, whileInTime inTime: @escaping @Sendable () -> Bool,
        orWhileBlobIsThere blobIsThere: (@Sendable () async throws -> Bool)? = nil, requiringReferences: Bool = false
    ) async throws -> PathInsertion {
        let referenceHashes = Array(Set(record.referenceHashParts)).sorted()
        let required = requiringReferences ? referenceHashes.filter { $0 != record.hashPart } : []
        let locksOrphans = database.backend == .postgres
        return try await describingFailure("storing path \(record.storePath) in cache \(record.cacheID)") {
            do {
                return try await database.transaction { db in
                    // On PostgreSQL a concurrent insert of the same key waits here until the other commits or rolls back.
                    let inserted =
                        try await db.raw(
                            """
                            INSERT INTO paths (cache_id, hash_part, store_path, nar_hash, nar_size, file_name, file_hash,
                                               file_size, compression, refs, deriver, sigs, ca, created_at,
                                               last_accessed_at)
                            VALUES (\(bind: record.cacheID), \(bind: record.hashPart), \(bind: record.storePath.path),
                                    \(bind: record.narHash), \(bind: record.narSize), \(bind: record.fileName),
                                    \(bind: record.fileHash), \(bind: record.fileSize), \(bind: record.compression),
                                    \(bind: record.references.joined(separator: " ")), \(bind: record.deriver),
                                    \(bind: record.sigs.joined(separator: "\n")), \(bind: record.ca),
                                    \(bind: record.createdAt.unixMilliseconds),
                                    \(bind: record.createdAt.unixMilliseconds))
                            ON CONFLICT (cache_id, hash_part) DO NOTHING
                            RETURNING hash_part
                            """
                        ).first() != nil
                    guard inserted else {
                        guard
                            let winner = try await db.raw(
                                """
                                SELECT \(unsafeRaw: Self.pathColumns) FROM paths
                                WHERE cache_id = \(bind: record.cacheID) AND hash_part = \(bind: record.hashPart)
                                """
                            ).first().map(PathRecord.init(row:))
                        else { throw StorageError.notFound(what: "path", key: "\(record.cacheID)/\(record.hashPart)") }
                        return .present(winner)
                    }
                    var start = referenceHashes.startIndex
                    while start < referenceHashes.endIndex {
                        let end = min(start + Self.hashQueryChunkSize, referenceHashes.endIndex)
                        let rows = referenceHashes[start..<end].map { reference -> SQLQueryString in
                            "(\(bind: record.cacheID), \(bind: record.hashPart), \(bind: reference))"
                        }
                        try await db.raw(
                            """
                            INSERT INTO path_references (cache_id, referrer, reference)
                            VALUES \(rows.joined(separator: ", "))
                            ON CONFLICT DO NOTHING
                            """
                        ).run()
                        start = end
                    }
                    if !required.isEmpty {
                        let missing = try await Self.absentPaths(required, cacheID: record.cacheID, on: db)
                        if !missing.isEmpty { throw ReferencesMissing(hashParts: missing) }
                    }
                    if !inTime() {
                        guard let blobIsThere else { throw TooLate() }
                        if locksOrphans {
                            _ = try await db.raw(
                                "SELECT file_name FROM blob_orphans WHERE file_name = \(bind: record.fileName) FOR UPDATE"
                            ).all()
                        }
                        guard try await blobIsThere() else { throw TooLate() }
                    }
                    return .inserted
                }
            } catch is TooLate {
                return .tooLate
            } catch let missing as ReferencesMissing {
                return .referencesMissing(missing.hashParts)
            }
        }
    }

    /// Every path of a cache, by hash part: for consistency checks and garbage collection.
    public func paths(cacheID: String) async throws -> [PathRecord] {
        try await describingFailure("listing paths of cache \(cacheID)") {
            try await sql.raw(
                "SELECT \(unsafeRaw: Self.pathColumns) FROM paths WHERE cache_id = \(bind: cacheID) ORDER BY hash_part"
            ).all().map(PathRecord.init(row:))
        }
    }

    /// Hash parts of the paths `hashPart` refers to, sorted.
    public func references(cacheID: String, hashPart: String) async throws -> [String] {
        try await describingFailure("reading references of \(hashPart) in cache \(cacheID)") {
            try await sql.raw(
                """
                SELECT reference FROM path_references
                WHERE cache_id = \(bind: cacheID) AND referrer = \(bind: hashPart)
                ORDER BY reference
                """
            ).all(decodingColumn: "reference", as: String.self)
        }
    }

    /// Hash parts of the paths that refer to `hashPart`, sorted.
    public func referrers(cacheID: String, hashPart: String) async throws -> [String] {
        try await describingFailure("reading referrers of \(hashPart) in cache \(cacheID)") {
            try await sql.raw(
                """
                SELECT referrer FROM path_references
                WHERE cache_id = \(bind: cacheID) AND reference = \(bind: hashPart)
                ORDER BY referrer
                """
            ).all(decodingColumn: "referrer", as: String.self)
        }
    }

    /// Whether any cache still has a path stored in blob `fileName`; a blob is deleted only when none does.
    public func isBlobReferenced(fileName: String) async throws -> Bool {
        try await describingFailure("checking whether blob \(fileName) is in use") {
            try await sql.raw("SELECT 1 AS used FROM paths WHERE file_name = \(bind: fileName) LIMIT 1").first() != nil
        }
    }

    /// Rolls back an insertion that came too late.
    private struct TooLate: Error {}
    private struct ReferencesMissing: Error { let hashParts: [String] }

    /// The hash parts among `hashParts` (unique) that the cache does not hold, as `db` sees it.
    private static func absentPaths(_ hashParts: [String], cacheID: String, on db: any SQLDatabase) async throws
        -> [String]
    {
        var present = Set<String>()
        var start = hashParts.startIndex
        while start < hashParts.endIndex {
            let end = min(start + hashQueryChunkSize, hashParts.endIndex)
            let chunk: [any Encodable & Sendable] = Array(hashParts[start..<end])
            present.formUnion(
                try await db.raw(
                    """
                    SELECT hash_part FROM paths WHERE cache_id = \(bind: cacheID) AND hash_part IN (\(binds: chunk))
                    """
                ).all(decodingColumn: "hash_part", as: String.self))
            start = end
        }
        return hashParts.filter { !present.contains($0) }
    }

    static let pathColumns = """
        cache_id, hash_part, store_path, nar_hash, nar_size, file_name, file_hash, file_size, compression, \
        refs, deriver, sigs, ca, created_at
        """
}

extension PathRecord {
    init(row: any SQLRow) throws {
        let refs = try row.decode(column: "refs", as: String.self)
        let sigs = try row.decode(column: "sigs", as: String.self)
        let hashPart = try row.decode(column: "hash_part", as: String.self)
        self.init(
            cacheID: try row.decode(column: "cache_id", as: String.self),
            hashPart: hashPart,
            storePath: try row.decodeStorePath(column: "store_path", table: "paths", key: hashPart),
            narHash: try row.decode(column: "nar_hash", as: String.self),
            narSize: try row.decode(column: "nar_size", as: Int64.self),
            fileName: try row.decode(column: "file_name", as: String.self),
            fileHash: try row.decode(column: "file_hash", as: String.self),
            fileSize: try row.decode(column: "file_size", as: Int64.self),
            compression: try row.decode(column: "compression", as: String.self),
            references: refs.split(separator: " ").map(String.init),
            deriver: try row.decode(column: "deriver", as: String?.self),
            sigs: sigs.split(separator: "\n").map(String.init),
            ca: try row.decode(column: "ca", as: String?.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)))
    }
}

extension CapstanStore {
    /// The paths of a cache among `hashParts` (absent ones left out), one query per 500.
    public func paths(cacheID: String, hashParts: [String]) async throws -> [PathRecord] {
        var found: [PathRecord] = []
        for chunk in Self.chunks(of: hashParts) {
            let binds: [any Encodable & Sendable] = chunk
            found += try await describingFailure("looking up \(chunk.count) paths in cache \(cacheID)") {
                try await sql.raw(
                    """
                    SELECT \(unsafeRaw: Self.pathColumns) FROM paths
                    WHERE cache_id = \(bind: cacheID) AND hash_part IN (\(binds: binds))
                    """
                ).all().map(PathRecord.init(row:))
            }
        }
        return found
    }
}
