import CapstanModel
import CapstanStorage
import Foundation
import NixCore

extension CacheService {
    /// What the missing-paths answer advertises: how long an upload may wait for its references.
    public var maxReferenceWaitSeconds: Int { Int(uploadLimits.maxReferenceWait.components.seconds) }

    /// Holds a checked upload (its NAR still in `writer`, not in place) until the cache holds every
    /// path it references: woken when this process stores a path in the cache, and looking again
    /// every `referenceRecheck` for paths stored by other replicas. While it waits, its stored size
    /// is reserved against the cache's pending bound, which the caller releases once the upload is
    /// committed or refused. On timeout, when the bound leaves no room, or when the client goes away,
    /// the writer is discarded and the answer names the missing references.
    func awaitReferences(
        of storePath: StorePath, _ references: [StorePath], in cache: CacheRecord, fileSize: UInt64,
        wait: ReferenceWait, writer: any BlobWriter
    ) async throws -> UploadReservation? {
        let needed = Array(Set(references.map(\.hashPart)).subtracting([storePath.hashPart])).sorted()
        guard !needed.isEmpty else { return nil }
        var seen = arrivals.count
        var missing = try await store.missingHashes(cacheID: cache.id, hashes: needed)
        guard !missing.isEmpty else { return nil }
        logger.info(
            "upload waits for its references",
            metadata: ["cache": "\(cache.name)", "path": "\(storePath.path)", "missing": "\(missing.count)"])
        let started = ContinuousClock.now
        let deadline = started + min(wait.timeout, uploadLimits.maxReferenceWait)
        var reservation = UploadReservation(store: store, cache: cache, limits: uploadLimits)
        do {
            do {
                try await reservation.cover(fileSize, exactly: true)
            } catch let error as ServiceError where error.kind == .insufficientStorage {
                throw referencesMissing(
                    storePath, missing, among: references,
                    because: "cache '\(cache.name)' has no room left under max_pending_upload_bytes for it to wait")
            }
            while true {
                let now = ContinuousClock.now
                guard now < deadline else {
                    throw referencesMissing(
                        storePath, missing, among: references,
                        because: "they did not arrive within \(Self.seconds(now - started)) s")
                }
                await arrivals.wait(
                    forNewIn: cache.id, since: seen, atMost: min(uploadLimits.referenceRecheck, deadline - now))
                if wait.clientGone() || Task.isCancelled {
                    throw referencesMissing(
                        storePath, missing, among: references, because: "its client went away while it waited")
                }
                seen = arrivals.count
                missing = try await store.missingHashes(cacheID: cache.id, hashes: missing)
                if missing.isEmpty { return reservation }
            }
        } catch {
            await writer.discard()
            await reservation.release()
            logger.info(
                "upload waiting for references ended unstored",
                metadata: ["cache": "\(cache.name)", "path": "\(storePath.path)", "error": "\(error)"])
            throw error
        }
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
