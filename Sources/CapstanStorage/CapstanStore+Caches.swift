import Foundation
import SQLKit

extension CapstanStore {
    /// Stores a new cache. A name its workspace already uses throws
    /// `StorageError.duplicate(what: "cache", name:)`; a public cache named like another public cache
    /// (of any workspace) throws `duplicate(what: "public cache", name:)`. Private caches of other
    /// workspaces never stand in the way: their names are theirs.
    public func insertCache(_ record: CacheRecord) async throws {
        let conflict = try await describingFailure("creating cache '\(record.name)'") {
            try await database.transaction { db -> StorageError? in
                let inserted =
                    try await db.raw(
                        """
                        INSERT INTO caches (id, workspace_id, name, is_public, key_name, secret_key, public_key,
                                            compression, priority, created_at, retention_seconds, max_size,
                                            keep_generations)
                        VALUES (\(bind: record.id), \(bind: record.workspaceID), \(bind: record.name),
                                \(bind: record.isPublic), \(bind: record.keyName), \(bind: record.secretKey),
                                \(bind: record.publicKey), \(bind: record.compression), \(bind: record.priority),
                                \(bind: record.createdAt.unixMilliseconds), \(bind: record.retentionSeconds),
                                \(bind: record.maxSize), \(bind: record.keepGenerations))
                        ON CONFLICT DO NOTHING
                        RETURNING id
                        """
                    ).first() != nil
                if inserted { return nil }
                let ownTaken =
                    try await db.raw(
                        """
                        SELECT id FROM caches
                        WHERE workspace_id = \(bind: record.workspaceID) AND name = \(bind: record.name)
                        """
                    ).first() != nil
                return .duplicate(what: ownTaken ? "cache" : "public cache", name: record.name)
            }
        }
        if let conflict { throw conflict }
    }

    /// The cache of that name in the workspace, public or private.
    public func cache(named name: String, workspaceID: String) async throws -> CacheRecord? {
        try await describingFailure("looking up cache '\(name)' of workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.cacheColumns) FROM caches
                WHERE workspace_id = \(bind: workspaceID) AND name = \(bind: name)
                """
            ).first().map(CacheRecord.init(row:))
        }
    }

    /// What a name means to a caller: the cache of that name in the caller's workspace when there is
    /// one, else the public cache of that name (the only kind a caller without a workspace sees).
    public func cache(resolving name: String, for workspaceID: String?) async throws -> CacheRecord? {
        try await describingFailure("looking up cache '\(name)'") {
            guard let workspaceID else {
                return try await sql.raw(
                    "SELECT \(unsafeRaw: Self.cacheColumns) FROM caches WHERE name = \(bind: name) AND is_public"
                ).first().map(CacheRecord.init(row:))
            }
            return try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.cacheColumns) FROM caches
                WHERE name = \(bind: name) AND (workspace_id = \(bind: workspaceID) OR is_public)
                ORDER BY CASE WHEN workspace_id = \(bind: workspaceID) THEN 0 ELSE 1 END
                LIMIT 1
                """
            ).first().map(CacheRecord.init(row:))
        }
    }

    public func cache(id: String) async throws -> CacheRecord? {
        try await describingFailure("looking up cache \(id)") {
            try await sql.raw("SELECT \(unsafeRaw: Self.cacheColumns) FROM caches WHERE id = \(bind: id)")
                .first().map(CacheRecord.init(row:))
        }
    }

    /// The caches of a workspace, by name.
    public func caches(workspaceID: String) async throws -> [CacheRecord] {
        try await describingFailure("listing caches of workspace \(workspaceID)") {
            try await sql.raw(
                """
                SELECT \(unsafeRaw: Self.cacheColumns) FROM caches WHERE workspace_id = \(bind: workspaceID)
                ORDER BY name
                """
            ).all().map(CacheRecord.init(row:))
        }
    }

    /// Every cache of every workspace, by name: for the server's periodic work.
    public func allCaches() async throws -> [CacheRecord] {
        try await describingFailure("listing caches") {
            try await sql.raw("SELECT \(unsafeRaw: Self.cacheColumns) FROM caches ORDER BY name").all()
                .map(CacheRecord.init(row:))
        }
    }

    /// Counts the paths of a cache and adds up their sizes.
    public func stats(cacheID: String) async throws -> CacheStats {
        try await describingFailure("computing statistics of cache \(cacheID)") {
            // SUM of BIGINT is NUMERIC on PostgreSQL: cast back so both backends return an integer.
            let row = try await sql.raw(
                """
                SELECT CAST(COUNT(*) AS BIGINT) AS path_count,
                       CAST(COALESCE(SUM(nar_size), 0) AS BIGINT) AS nar_size,
                       CAST(COALESCE(SUM(file_size), 0) AS BIGINT) AS file_size
                FROM paths WHERE cache_id = \(bind: cacheID)
                """
            ).first()
            guard let row else { return CacheStats(pathCount: 0, narSize: 0, fileSize: 0) }
            return CacheStats(
                pathCount: Int(try row.decode(column: "path_count", as: Int64.self)),
                narSize: try row.decode(column: "nar_size", as: Int64.self),
                fileSize: try row.decode(column: "file_size", as: Int64.self))
        }
    }

    static let cacheColumns = """
        id, workspace_id, name, is_public, key_name, secret_key, public_key, compression, priority, created_at, \
        retention_seconds, max_size, keep_generations, last_gc_at
        """
}

extension CacheRecord {
    init(row: any SQLRow) throws {
        self.init(
            id: try row.decode(column: "id", as: String.self),
            workspaceID: try row.decode(column: "workspace_id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            isPublic: try row.decode(column: "is_public", as: Bool.self),
            keyName: try row.decode(column: "key_name", as: String.self),
            secretKey: try row.decode(column: "secret_key", as: String.self),
            publicKey: try row.decode(column: "public_key", as: String.self),
            compression: try row.decode(column: "compression", as: String.self),
            priority: try row.decode(column: "priority", as: Int.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)),
            retentionSeconds: try row.decode(column: "retention_seconds", as: Int64?.self),
            maxSize: try row.decode(column: "max_size", as: Int64?.self),
            keepGenerations: try row.decode(column: "keep_generations", as: Int.self),
            lastGCAt: try row.decode(column: "last_gc_at", as: Int64?.self).map(Date.init(unixMilliseconds:)))
    }
}
