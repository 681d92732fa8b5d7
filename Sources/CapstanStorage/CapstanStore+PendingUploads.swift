import Foundation
import SQLKit

/// Uploads that are not yet paths, as rows beside their blobs, and the bytes they hold per cache
/// (`caches.pending_upload_bytes`), which every change to the rows recomputes in its transaction.
extension CapstanStore {
    /// Bytes of staged NARs and multipart parts of the cache: one row read.
    public func pendingUploadBytes(cacheID: String) async throws -> Int64 {
        try await describingFailure("reading the pending upload bytes of cache \(cacheID)") {
            try await sql.raw("SELECT pending_upload_bytes FROM caches WHERE id = \(bind: cacheID)")
                .first(decodingColumn: "pending_upload_bytes", as: Int64.self) ?? 0
        }
    }

    /// Records a committed staged NAR or part (replacing the row of a blob written again under its key).
    public func recordPendingUpload(key: String, cacheID: String, uploadID: String?, bytes: Int64, at time: Date)
        async throws
    {
        try await describingFailure("recording pending upload \(key) of cache \(cacheID)") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO pending_uploads (blob_key, cache_id, upload_id, bytes, created_at)
                    VALUES (\(bind: key), \(bind: cacheID), \(bind: uploadID), \(bind: bytes),
                            \(bind: time.unixMilliseconds))
                    ON CONFLICT (blob_key) DO UPDATE SET bytes = excluded.bytes, created_at = excluded.created_at
                    """
                ).run()
                try await Self.recount(cacheIDs: [cacheID], on: db)
            }
        }
    }

    /// Forgets pending uploads whose blobs are gone: by key.
    public func forgetPendingUploads(keys: [String]) async throws {
        guard !keys.isEmpty else { return }
        let binds: [any Encodable & Sendable] = keys
        try await forgetPendingUploads(where: "blob_key IN (\(binds: binds))", what: "\(keys.count) pending uploads")
    }

    /// Forgets the parts of one multipart upload.
    public func forgetPendingUploads(uploadID: String) async throws {
        try await forgetPendingUploads(where: "upload_id = \(bind: uploadID)", what: "the parts of upload \(uploadID)")
    }

    /// Forgets every pending upload recorded before `cutoff`: the expiry sweep removed their blobs.
    public func forgetPendingUploads(recordedBefore cutoff: Date) async throws {
        try await forgetPendingUploads(
            where: "created_at < \(bind: cutoff.unixMilliseconds)", what: "pending uploads older than \(cutoff)")
    }

    private func forgetPendingUploads(where condition: SQLQueryString, what: String) async throws {
        try await describingFailure("forgetting \(what)") {
            try await database.transaction { db in
                let cacheIDs = try await db.raw(
                    "DELETE FROM pending_uploads WHERE \(condition) RETURNING cache_id"
                ).all(decodingColumn: "cache_id", as: String.self)
                try await Self.recount(cacheIDs: Set(cacheIDs), on: db)
            }
        }
    }

    private static func recount(cacheIDs: Set<String>, on db: any SQLDatabase) async throws {
        for cacheID in cacheIDs.sorted() {
            try await db.raw(
                """
                UPDATE caches SET pending_upload_bytes =
                    (SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM pending_uploads WHERE cache_id = \(bind: cacheID))
                WHERE id = \(bind: cacheID)
                """
            ).run()
        }
    }
}
