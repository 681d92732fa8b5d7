import Foundation
import SQLKit

/// Uploads that are not yet paths, as rows beside their blobs: staged NARs and multipart parts,
/// and the space uploads still streaming in have reserved. A cache's pending bytes are their sum,
/// read through the `(cache_id, bytes)` index rather than kept in a counter that could drift.
extension CapstanStore {
    /// Bytes of staged NARs, multipart parts and reservations of the cache.
    public func pendingUploadBytes(cacheID: String) async throws -> Int64 {
        try await describingFailure("reading the pending upload bytes of cache \(cacheID)") {
            try await Self.pendingBytes(cacheID: cacheID, except: nil, on: sql)
        }
    }

    /// Grows the reservation `key` of an upload streaming into the cache to `wanted` bytes, or to as
    /// much of that as `limit` leaves beside everything else pending, but at least to `needed`.
    /// Returns the bytes now reserved; nil, changing nothing, when not even `needed` fits. Decided
    /// in one transaction holding the cache's row, so parallel uploads cannot together exceed `limit`.
    public func reservePendingUpload(
        key: String, cacheID: String, needed: Int64, wanted: Int64, limit: Int64, at time: Date
    ) async throws -> Int64? {
        let locksCache = database.backend == .postgres
        return try await describingFailure("reserving \(needed) bytes for upload \(key) of cache \(cacheID)") {
            try await database.transaction { db in
                // SQLite has one writer at a time; PostgreSQL queues reservations of one cache on its row.
                if locksCache { try await db.raw("SELECT id FROM caches WHERE id = \(bind: cacheID) FOR UPDATE").run() }
                let room = limit - (try await Self.pendingBytes(cacheID: cacheID, except: key, on: db))
                guard room >= needed else { return nil }
                let granted = min(max(wanted, needed), room)
                try await Self.upsertPending(
                    key: key, cacheID: cacheID, uploadID: nil, bytes: granted, at: time, on: db)
                return granted
            }
        }
    }

    /// Turns an upload's reservation into the row of the blob it committed, with its exact size
    /// (replacing the row of a blob written again under its key), in one transaction.
    public func settlePendingUpload(
        reservation: String, as key: String, cacheID: String, uploadID: String?, bytes: Int64, at time: Date
    ) async throws {
        try await describingFailure("recording pending upload \(key) of cache \(cacheID)") {
            try await database.transaction { db in
                try await db.raw("DELETE FROM pending_uploads WHERE blob_key = \(bind: reservation)").run()
                try await Self.upsertPending(
                    key: key, cacheID: cacheID, uploadID: uploadID, bytes: bytes, at: time, on: db)
            }
        }
    }

    private static func pendingBytes(cacheID: String, except key: String?, on db: any SQLDatabase) async throws
        -> Int64
    {
        try await db.raw(
            """
            SELECT CAST(COALESCE(SUM(bytes), 0) AS BIGINT) AS pending FROM pending_uploads
            WHERE cache_id = \(bind: cacheID) AND blob_key <> \(bind: key ?? "")
            """
        ).first(decodingColumn: "pending", as: Int64.self) ?? 0
    }

    private static func upsertPending(
        key: String, cacheID: String, uploadID: String?, bytes: Int64, at time: Date, on db: any SQLDatabase
    ) async throws {
        try await db.raw(
            """
            INSERT INTO pending_uploads (blob_key, cache_id, upload_id, bytes, created_at)
            VALUES (\(bind: key), \(bind: cacheID), \(bind: uploadID), \(bind: bytes), \(bind: time.unixMilliseconds))
            ON CONFLICT (blob_key) DO UPDATE SET bytes = excluded.bytes, created_at = excluded.created_at
            """
        ).run()
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
                try await db.raw("DELETE FROM pending_uploads WHERE \(condition)").run()
            }
        }
    }
}
