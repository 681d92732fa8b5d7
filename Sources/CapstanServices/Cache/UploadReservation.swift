import CapstanStorage
import Foundation

/// The space an upload streaming into a cache (a staged NAR, a multipart part) holds against the
/// cache's bound on pending bytes. It is reserved in the database before the bytes arrive (the
/// declared size up front, then ahead in steps), so uploads running in parallel cannot together
/// exceed the bound; it becomes the committed blob's row, or is released on every other way out.
struct UploadReservation {
    let store: CapstanStore
    let cache: CacheRecord
    let limits: UploadLimits
    /// The reservation's own row key; no blob has it.
    let key = "reserved/" + UUID().uuidString.lowercased()
    private(set) var reserved: UInt64 = 0
    /// Reserved ahead of the bytes, so that a large upload costs one write per step, not per chunk.
    static let step: UInt64 = 8 << 20

    init(store: CapstanStore, cache: CacheRecord, limits: UploadLimits) {
        self.store = store
        self.cache = cache
        self.limits = limits
    }

    /// Makes sure `size` bytes are reserved (`exactly`, for a declared size; else with a step more
    /// when the bound leaves room); throws 507, naming the bound and its setting, when it does not leave `size`.
    mutating func cover(_ size: UInt64, exactly: Bool = false) async throws {
        guard size > reserved else { return }
        let limit = Int64(clamping: limits.maxPendingBytesPerCache)
        // A step ahead never takes more than an eighth of the bound from uploads running beside this one.
        let ahead = exactly ? 0 : min(Self.step, limits.maxPendingBytesPerCache / 8)
        guard
            let granted = try await store.reservePendingUpload(
                key: key, cacheID: cache.id, needed: Int64(clamping: size),
                wanted: Int64(clamping: size.addingReportingOverflow(ahead).partialValue), limit: limit, at: Date())
        else { throw limits.exceeded(by: cache) }
        reserved = UInt64(granted)
    }

    /// The upload committed `blob` of `bytes`: its row replaces the reservation.
    func settle(as blob: BlobKey, uploadID: String? = nil, bytes: UInt64) async throws {
        try await store.settlePendingUpload(
            reservation: key, as: blob.description, cacheID: cache.id, uploadID: uploadID, bytes: Int64(bytes),
            at: Date())
    }

    /// The upload failed, was refused or its client went away: the space is free again. Done in a task
    /// of its own, so that a cancelled request still releases it; failing that, the expiry sweep does.
    func release() async {
        guard reserved > 0 else { return }
        let store = store
        let key = key
        await Task.detached { try? await store.forgetPendingUploads(keys: [key]) }.value
    }
}
