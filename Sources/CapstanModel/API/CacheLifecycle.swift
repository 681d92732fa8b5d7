import Foundation
import NixCore

/// A size as people write it: `500M`, `20GiB`, `1.5T`, `1000000` (bytes). K, M, G, T are powers of 1024
/// with or without `iB`/`B`.
public struct ByteSize: Codable, Sendable, Hashable, CustomStringConvertible {
    public var bytes: Int64

    public init(bytes: Int64) { self.bytes = bytes }

    /// Nil when `text` is no such size (a negative one included).
    public init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        let number = text.prefix { $0.isNumber || $0 == "." }
        var unit = text.dropFirst(number.count).trimmingCharacters(in: .whitespaces).lowercased()
        if unit.hasSuffix("ib") { unit.removeLast(2) } else if unit.hasSuffix("b") { unit.removeLast() }
        let scales: [String: Double] = ["": 1, "k": 1024, "m": 1_048_576, "g": 1_073_741_824, "t": 1_099_511_627_776]
        guard let value = Double(number), value >= 0, let scale = scales[unit] else { return nil }
        let bytes = value * scale
        guard bytes < 9.2e18 else { return nil }
        self.bytes = Int64(bytes.rounded())
    }

    /// `1.5 GiB`, `512 B`.
    public var description: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let bytes = try? container.decode(Int64.self) {
            self.bytes = bytes
            return
        }
        let text = try container.decode(String.self)
        guard let parsed = ByteSize(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "'\(text)' is not a size (e.g. 500M, 20GiB, or bytes)")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bytes)
    }
}

/// Changes to what a cache keeps; an absent field leaves its setting as it is.
public struct ConfigureCacheRequest: Codable, Sendable, Equatable {
    /// How long a path is kept after its last download or upload: a duration (`30d`, `12h`, `0s`)
    /// or `forever`.
    public var retention: String?
    /// The most the cache's stored NARs may take (`50G`, bytes) or `unlimited`; beyond it the least
    /// recently used paths are removed.
    public var maxSize: String?
    /// How many of each agent's last successful deployments stay pinned (its rollback targets).
    public var keepGenerations: Int?

    public init(retention: String? = nil, maxSize: String? = nil, keepGenerations: Int? = nil) {
        self.retention = retention
        self.maxSize = maxSize
        self.keepGenerations = keepGenerations
    }
}

/// A cache's lifecycle settings as they are.
public struct CacheRetention: Codable, Sendable, Equatable {
    /// Nil: paths are kept forever (unless the size bound evicts them).
    public var retention: TimeSpan?
    /// Nil: no bound.
    public var maxSize: Int64?
    public var keepGenerations: Int
    /// When garbage collection last ran on this cache.
    public var lastGC: Date?

    public init(retention: TimeSpan?, maxSize: Int64?, keepGenerations: Int, lastGC: Date? = nil) {
        self.retention = retention
        self.maxSize = maxSize
        self.keepGenerations = keepGenerations
        self.lastGC = lastGC
    }
}

/// How much a cache holds and serves, and what its next garbage collection would remove.
public struct CacheStatistics: Codable, Sendable, Equatable {
    public var pathCount: Int
    /// Bytes of the distinct blobs its paths are stored in.
    public var storedBytes: Int64
    /// Bytes its paths' files would take beyond `storedBytes` if identical NARs were not stored once.
    public var dedupSavedBytes: Int64
    /// Of `storedBytes`, what other caches use too.
    public var sharedBytes: Int64
    /// narinfo requests answered (hits) and not (misses) over the last 24 hours.
    public var hitsLastDay: Int64
    public var missesLastDay: Int64
    /// What garbage collection would remove now.
    public var nextGC: GCSummary?

    public init(
        pathCount: Int, storedBytes: Int64, dedupSavedBytes: Int64, sharedBytes: Int64, hitsLastDay: Int64,
        missesLastDay: Int64, nextGC: GCSummary?
    ) {
        self.pathCount = pathCount
        self.storedBytes = storedBytes
        self.dedupSavedBytes = dedupSavedBytes
        self.sharedBytes = sharedBytes
        self.hitsLastDay = hitsLastDay
        self.missesLastDay = missesLastDay
        self.nextGC = nextGC
    }
}

public struct GCSummary: Codable, Sendable, Equatable {
    public var paths: Int
    public var narBytes: Int64
    public var fileBytes: Int64

    public init(paths: Int, narBytes: Int64, fileBytes: Int64) {
        self.paths = paths
        self.narBytes = narBytes
        self.fileBytes = fileBytes
    }
}

/// A path garbage collection, `cache rm` or a repair removed (or, in a dry run, would remove).
public struct RemovedPath: Codable, Sendable, Equatable {
    public var storePath: StorePath
    public var narSize: Int64
    public var fileSize: Int64
    /// `expired`, `over max size`, `requested`, `refers to a removed path`, or what `verify` found wrong.
    public var reason: String

    public init(storePath: StorePath, narSize: Int64, fileSize: Int64, reason: String) {
        self.storePath = storePath
        self.narSize = narSize
        self.fileSize = fileSize
        self.reason = reason
    }
}

/// What one garbage collection (or `cache rm`) of a cache did.
public struct GCReport: Codable, Sendable, Equatable {
    public var cache: String
    public var dryRun: Bool
    /// Referrers before the paths they refer to: the order of removal.
    public var removed: [RemovedPath]
    /// Paths left in the cache.
    public var keptPaths: Int
    /// Of those, the paths agents need (current, rollback targets, pending deployments) and their closures.
    public var pinnedPaths: Int
    /// Blobs deleted because no path of any cache uses them any more (their grace period over).
    public var blobsDeleted: Int
    public var blobBytesFreed: Int64
    /// Blobs no path uses, waiting for their grace period before they are deleted.
    public var blobsWaiting: Int

    public init(
        cache: String, dryRun: Bool, removed: [RemovedPath], keptPaths: Int, pinnedPaths: Int, blobsDeleted: Int = 0,
        blobBytesFreed: Int64 = 0, blobsWaiting: Int = 0
    ) {
        self.cache = cache
        self.dryRun = dryRun
        self.removed = removed
        self.keptPaths = keptPaths
        self.pinnedPaths = pinnedPaths
        self.blobsDeleted = blobsDeleted
        self.blobBytesFreed = blobBytesFreed
        self.blobsWaiting = blobsWaiting
    }

    public var summary: GCSummary {
        GCSummary(
            paths: removed.count, narBytes: removed.reduce(0) { $0 + $1.narSize },
            fileBytes: removed.reduce(0) { $0 + $1.fileSize })
    }
}

/// `cache rm`: store paths (or their base names or hash parts) to remove.
public struct RemovePathsRequest: Codable, Sendable, Equatable {
    public var paths: [String]
    /// Remove even paths agents need.
    public var force: Bool
    public var dryRun: Bool

    public init(paths: [String], force: Bool = false, dryRun: Bool = false) {
        self.paths = paths
        self.force = force
        self.dryRun = dryRun
    }
}

/// A path whose stored NAR is missing or does not match its narinfo.
public struct VerifyProblem: Codable, Sendable, Equatable {
    public var storePath: StorePath
    public var fileName: String
    public var problem: String
    /// Hidden by `--repair`: its narinfo is no longer served.
    public var hidden: Bool

    public init(storePath: StorePath, fileName: String, problem: String, hidden: Bool) {
        self.storePath = storePath
        self.fileName = fileName
        self.problem = problem
        self.hidden = hidden
    }
}

public struct VerifyReport: Codable, Sendable, Equatable {
    public var cache: String
    public var checkedPaths: Int
    public var checkedBlobs: Int
    /// Stored (compressed) bytes read.
    public var bytesRead: Int64
    public var problems: [VerifyProblem]
    public var repaired: Bool

    public init(
        cache: String, checkedPaths: Int, checkedBlobs: Int, bytesRead: Int64, problems: [VerifyProblem],
        repaired: Bool
    ) {
        self.cache = cache
        self.checkedPaths = checkedPaths
        self.checkedBlobs = checkedBlobs
        self.bytesRead = bytesRead
        self.problems = problems
        self.repaired = repaired
    }
}

/// How far a verification got: blobs and their bytes, of the totals.
public struct VerifyProgress: Codable, Sendable, Equatable {
    public var checkedBlobs: Int
    public var totalBlobs: Int
    public var bytesRead: Int64
    public var totalBytes: Int64

    public init(checkedBlobs: Int, totalBlobs: Int, bytesRead: Int64, totalBytes: Int64) {
        self.checkedBlobs = checkedBlobs
        self.totalBlobs = totalBlobs
        self.bytesRead = bytesRead
        self.totalBytes = totalBytes
    }
}

/// One line of the streamed answer of `POST /api/v1/caches/NAME/verify` (newline-delimited JSON):
/// progress lines, then the report.
public struct VerifyEvent: Codable, Sendable, Equatable {
    public var progress: VerifyProgress?
    public var report: VerifyReport?
    /// Why the verification stopped before its report.
    public var error: String?

    public init(progress: VerifyProgress? = nil, report: VerifyReport? = nil, error: String? = nil) {
        self.progress = progress
        self.report = report
        self.error = error
    }
}
