import CapstanStorage
import Foundation
import Synchronization

/// Which paths were read and how often narinfo lookups hit, gathered in memory and written to the
/// database in one batch per flush: a request costs a set insertion, not a database write.
/// Retention counts from a path's last use, so a flush every half minute is precise enough.
final class CacheAccessLog: Sendable {
    private struct Uses {
        var hashParts: Set<String> = []
        var fileNames: Set<String> = []
        var hits = 0
        var misses = 0
    }

    /// Entries kept between flushes before new ones are dropped (a flush then catches up):
    /// memory stays bounded whatever the request rate.
    static let capacity = 200_000

    private let state = Mutex<(uses: [String: Uses], entries: Int)>(([:], 0))

    /// A narinfo lookup of `hashPart`, found or not.
    func narInfo(cacheID: String, hashPart: String, found: Bool) {
        state.withLock { state in
            if found {
                if state.entries < Self.capacity,
                    state.uses[cacheID, default: Uses()].hashParts.insert(hashPart).inserted
                {
                    state.entries += 1
                }
                state.uses[cacheID, default: Uses()].hits += 1
            } else {
                state.uses[cacheID, default: Uses()].misses += 1
            }
        }
    }

    /// Paths a client was told the cache has (a push skips them): they count as used, so that a
    /// collection does not remove them from under the closure being pushed.
    func used(cacheID: String, hashParts: some Sequence<String>) {
        state.withLock { state in
            for hashPart in hashParts where state.entries < Self.capacity {
                if state.uses[cacheID, default: Uses()].hashParts.insert(hashPart).inserted { state.entries += 1 }
            }
        }
    }

    /// A download of the NAR stored in `fileName`.
    func narDownload(cacheID: String, fileName: String) {
        state.withLock { state in
            guard state.entries < Self.capacity else { return }
            if state.uses[cacheID, default: Uses()].fileNames.insert(fileName).inserted { state.entries += 1 }
        }
    }

    /// Writes what was gathered since the last flush, as used at `time`. What cannot be written
    /// is dropped: a later use records it again, and a count lost is only a statistic.
    func flush(to store: CapstanStore, at time: Date = Date()) async throws {
        let uses = state.withLock { state in
            defer { state = ([:], 0) }
            return state.uses
        }
        guard !uses.isEmpty else { return }
        for (cacheID, use) in uses.sorted(by: { $0.key < $1.key }) {
            try await store.recordPathAccess(
                cacheID: cacheID, hashParts: use.hashParts.sorted(), fileNames: use.fileNames.sorted(), at: time)
        }
        let counts = uses.filter { $0.value.hits + $0.value.misses > 0 }.sorted { $0.key < $1.key }
            .map { (cacheID: $0.key, hits: $0.value.hits, misses: $0.value.misses) }
        try await store.addRequestCounts(counts, at: time)
    }
}
