import CapstanModel
import CapstanStorage
import Foundation
import NixCore

extension CacheService {
    /// What the missing-paths answer advertises: how long an upload may wait for its references.
    public var maxReferenceWaitSeconds: Int { Int(uploadLimits.maxReferenceWait.components.seconds) }

    /// An upload held for its references: what it still lacks, until when it may wait, and the room it holds.
    struct ReferenceHold {
        let storePath: StorePath
        let references: [StorePath]
        let cache: CacheRecord
        let wait: ReferenceWait
        let missing: [String]
        /// Arrivals counted before `missing` was read: any since then is news.
        let seen: UInt64
        let started: ContinuousClock.Instant
        let deadline: ContinuousClock.Instant
        let reservation: UploadReservation
    }

    /// Before a checked upload's blob is put in place: nil when the cache holds every path it references;
    /// otherwise its stored size reserved against the cache's pending bound for the wait (released by the
    /// caller once the upload is stored or refused), or, when the bound leaves no room, the refusal.
    func holdForReferences(
        of storePath: StorePath, _ references: [StorePath], in cache: CacheRecord, fileSize: UInt64,
        wait: ReferenceWait
    ) async throws -> ReferenceHold? {
        let needed = Array(Set(references.map(\.hashPart)).subtracting([storePath.hashPart])).sorted()
        guard !needed.isEmpty else { return nil }
        let seen = arrivals.count
        let missing = try await store.missingHashes(cacheID: cache.id, hashes: needed)
        guard !missing.isEmpty else { return nil }
        var reservation = UploadReservation(store: store, cache: cache, limits: uploadLimits)
        do {
            try await reservation.cover(fileSize, exactly: true)
        } catch let error as ServiceError where error.kind == .insufficientStorage {
            throw ended(
                storePath, in: cache,
                referencesMissing(
                    storePath, missing, among: references,
                    because: "cache '\(cache.name)' has no room left under max_pending_upload_bytes for it to wait"))
        } catch {
            await reservation.release()
            throw error
        }
        logger.info(
            "upload waits for its references",
            metadata: ["cache": "\(cache.name)", "path": "\(storePath.path)", "missing": "\(missing.count)"])
        let started = ContinuousClock.now
        return ReferenceHold(
            storePath: storePath, references: references, cache: cache, wait: wait, missing: missing, seen: seen,
            started: started, deadline: started + min(wait.timeout, uploadLimits.maxReferenceWait),
            reservation: reservation)
    }

    /// Waits, the checked blob in place, until the cache holds every path `hold` lacks: woken when this
    /// process stores a path in the cache, and looking again every `referenceRecheck` for paths stored
    /// by other replicas. On timeout or when the client goes away, the answer names the missing references.
    func awaitReferences(_ hold: ReferenceHold) async throws {
        var seen = hold.seen
        var missing = hold.missing
        while true {
            let now = ContinuousClock.now
            guard now < hold.deadline else {
                throw ended(
                    hold.storePath, in: hold.cache,
                    referencesMissing(
                        hold.storePath, missing, among: hold.references,
                        because: "they did not arrive within \(Self.seconds(now - hold.started)) s"))
            }
            await arrivals.wait(
                forNewIn: hold.cache.id, since: seen, atMost: min(uploadLimits.referenceRecheck, hold.deadline - now))
            if hold.wait.clientGone() || Task.isCancelled {
                throw ended(
                    hold.storePath, in: hold.cache,
                    referencesMissing(
                        hold.storePath, missing, among: hold.references,
                        because: "its client went away while it waited"))
            }
            seen = arrivals.count
            missing = try await store.missingHashes(cacheID: hold.cache.id, hashes: missing)
            if missing.isEmpty { return }
        }
    }

    /// Logs how a wait for references ended without storing the path, and hands back the error.
    private func ended(_ storePath: StorePath, in cache: CacheRecord, _ error: ServiceError) -> ServiceError {
        logger.info(
            "upload waiting for references ended unstored",
            metadata: ["cache": "\(cache.name)", "path": "\(storePath.path)", "error": "\(error)"])
        return error
    }

    /// The refusal of a path whose references the cache does not hold (`hashParts` of `references`).
    func referencesMissing(
        _ storePath: StorePath, _ hashParts: [String], among references: [StorePath], because reason: String? = nil
    ) -> ServiceError {
        let missing = Set(hashParts)
        let paths = references.filter { missing.contains($0.hashPart) }.map(\.path)
        return ServiceError(
            .failedDependency,
            "\(storePath.path) was not stored: cache lacks \(paths.count == 1 ? "a path" : "paths") it references ("
                + paths.joined(separator: ", ") + ")" + (reason.map { "; \($0)" } ?? "")
                + "; upload them first, then this path again")
    }

    private static func seconds(_ duration: Duration) -> String {
        String(format: "%.1f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }
}
