import CapstanModel
import CapstanStorage
import Foundation

/// Bounds on uploads that are not yet paths: NARs staged by `nix copy` until their narinfo
/// arrives, and the parts of multipart uploads until they are completed.
public struct UploadLimits: Sendable, Equatable {
    /// An upload left unfinished this long is abandoned: its bytes are swept, its id refused.
    public var expiry: Duration
    /// Staged NARs and parts of one cache, together, in bytes (uploads waiting for their references too).
    public var maxPendingBytesPerCache: UInt64
    /// The longest a checked upload may wait for the paths it references, whatever its client asks.
    public var maxReferenceWait: Duration
    /// How often a waiting upload looks again without being told (a reference stored by another replica).
    public var referenceRecheck: Duration

    public init(
        expiry: Duration = .seconds(24 * 3600), maxPendingBytesPerCache: UInt64 = 32 << 30,
        maxReferenceWait: Duration = .seconds(300), referenceRecheck: Duration = .milliseconds(500)
    ) {
        self.expiry = expiry
        self.maxPendingBytesPerCache = maxPendingBytesPerCache
        self.maxReferenceWait = maxReferenceWait
        self.referenceRecheck = referenceRecheck
    }

    /// The refusal of an upload that would take the cache's pending bytes over the bound.
    func exceeded(by cache: CacheRecord) -> ServiceError {
        ServiceError(
            .insufficientStorage,
            "cache '\(cache.name)' holds more unfinished uploads than this server allows "
                + "(max_pending_upload_bytes = \(maxPendingBytesPerCache) bytes, counting uploads in progress); "
                + "finish or abort them, wait until they expire, or raise max_pending_upload_bytes")
    }

    var expirySeconds: TimeInterval {
        let (seconds, attoseconds) = expiry.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

/// What a sweep of abandoned uploads removed.
public struct UploadSweep: Sendable, Equatable {
    public var stagedNars = 0
    public var multipartUploads = 0
    public var bytes: Int64 = 0
}

extension CacheService {
    /// Space for an upload into `cache`, reserved as its bytes arrive (the whole `expectedSize` at once when known).
    func reserveUpload(in cache: CacheRecord, expectedSize: UInt64?) async throws -> UploadReservation {
        var reservation = UploadReservation(store: store, cache: cache, limits: uploadLimits)
        if let expectedSize, expectedSize > 0 { try await reservation.cover(expectedSize, exactly: true) }
        return reservation
    }

    /// Removes a staged NAR that has served its purpose, and its count; failures only leave it to the sweep.
    func removeStaged(_ key: BlobKey) async {
        _ = try? await blobs.delete(key)
        try? await store.forgetPendingUploads(keys: [key.description])
    }

    /// Every multipart upload whose description can be read.
    func multipartUploads() async throws -> [MultipartNarUpload] {
        var uploads: [MultipartNarUpload] = []
        for entry in try await blobs.list(.uploads) {
            guard let bytes = try await blobs.contents(of: entry.key),
                let upload = try? JSONDecoder.capstan.decode(MultipartNarUpload.self, from: Data(bytes))
            else { continue }
            uploads.append(upload)
        }
        return uploads
    }

    /// An upload may go on only while it is young and the token that started it still may write to its cache.
    func requireAlive(_ upload: MultipartNarUpload, now: Date = Date()) async throws {
        let unknown = ServiceError.notFound(
            "no upload \(upload.uploadID.prefix(8))… of NAR \(upload.narID) is in progress")
        guard now.timeIntervalSince(upload.createdAt) < uploadLimits.expirySeconds else { throw unknown }
        guard let tokenID = upload.tokenID, let token = try await store.token(id: tokenID), token.revokedAt == nil,
            let cache = try await store.cache(id: upload.cacheID),
            AccessPolicy.allows(Principal(token: token), .writeCache(cache))
        else { throw unknown }
    }

    /// Removes staged NARs older than the expiry, and multipart uploads that expired or whose token
    /// was revoked. The server runs it at start and then periodically.
    @discardableResult
    public func sweepAbandonedUploads(now: Date = Date()) async throws -> UploadSweep {
        var sweep = UploadSweep()
        let cutoff = now.addingTimeInterval(-uploadLimits.expirySeconds)
        var swept: [String] = []
        for entry in try await blobs.list(.staged) where entry.modified < cutoff {
            if try await blobs.delete(entry.key) {
                sweep.stagedNars += 1
                sweep.bytes += entry.size
                swept.append(entry.key.description)
            }
        }
        try await store.forgetPendingUploads(keys: swept)
        for upload in try await multipartUploads() {
            do {
                try await requireAlive(upload, now: now)
            } catch let error as ServiceError where error.kind == .notFound {
                sweep.bytes += try await blobs.list(.parts(uploadID: upload.uploadID)).reduce(0) { $0 + $1.size }
                await abortMultipartUpload(upload)
                sweep.multipartUploads += 1
            }
        }
        // Whatever was recorded before the cutoff is gone now (or belonged to an upload that just expired).
        try await store.forgetPendingUploads(recordedBefore: cutoff)
        if sweep != UploadSweep() {
            logger.info(
                "swept abandoned uploads",
                metadata: [
                    "stagedNars": "\(sweep.stagedNars)", "multipartUploads": "\(sweep.multipartUploads)",
                    "bytes": "\(sweep.bytes)",
                ])
        }
        return sweep
    }
}
