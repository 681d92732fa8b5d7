import Foundation
import NixCore

public struct CreateCacheRequest: Codable, Sendable {
    public var name: String
    public var isPublic: Bool
    /// Name of the signing key; `NAME-1` when absent.
    public var keyName: String?
    /// How stored NARs are compressed: `zstd` (default), `xz` or `none`.
    public var compression: String?

    public init(name: String, isPublic: Bool, keyName: String? = nil, compression: String? = nil) {
        self.name = name
        self.isPublic = isPublic
        self.keyName = keyName
        self.compression = compression
    }
}

public struct CacheInfo: Codable, Sendable, Equatable {
    public var name: String
    public var isPublic: Bool
    /// The public key in Nix's `name:base64` form, for `trusted-public-keys`.
    public var publicKey: String
    public var compression: String
    public var storeDir: String
    public var priority: Int
    /// The substituter URL, e.g. `http://host:8080/cache/NAME`.
    public var url: String
    public var pathCount: Int?
    public var narSize: Int64?
    public var fileSize: Int64?
    public var createdAt: Date
    /// What the cache keeps, and for how long.
    public var retention: CacheRetention?
    /// Detailed figures, in the answer about one cache.
    public var statistics: CacheStatistics?

    public init(
        name: String, isPublic: Bool, publicKey: String, compression: String, storeDir: String, priority: Int,
        url: String, pathCount: Int? = nil, narSize: Int64? = nil, fileSize: Int64? = nil, createdAt: Date,
        retention: CacheRetention? = nil, statistics: CacheStatistics? = nil
    ) {
        self.name = name
        self.isPublic = isPublic
        self.publicKey = publicKey
        self.compression = compression
        self.storeDir = storeDir
        self.priority = priority
        self.url = url
        self.pathCount = pathCount
        self.narSize = narSize
        self.fileSize = fileSize
        self.createdAt = createdAt
        self.retention = retention
        self.statistics = statistics
    }
}

/// Which of these store-path hash parts does the cache lack?
public struct MissingPathsRequest: Codable, Sendable {
    public var hashes: [String]
    public init(hashes: [String]) { self.hashes = hashes }
}

public struct MissingPathsResponse: Codable, Sendable {
    public var missing: [String]
    /// Seconds an upload may wait for its references (`X-Capstan-Await-References`) at the most;
    /// absent from a server that does not wait.
    public var maxReferenceWait: Int?

    public init(missing: [String], maxReferenceWait: Int? = nil) {
        self.missing = missing
        self.maxReferenceWait = maxReferenceWait
    }
}

/// What a client declares about a path it uploads; the server checks NarHash and NarSize.
public struct PathUploadInfo: Codable, Sendable, Equatable {
    public static let headerName = "X-Capstan-Path-Info"
    /// Seconds the server may hold the upload, once its NAR is checked, until the paths it references are in the cache.
    public static let awaitReferencesHeaderName = "X-Capstan-Await-References"

    public var storePath: StorePath
    /// `sha256:<nix32>` (any form Nix accepts is taken).
    public var narHash: String
    public var narSize: UInt64
    /// Full store paths or base names.
    public var references: [String]
    public var deriver: String?
    /// Signatures in Nix's `keyname:base64` form, kept alongside the cache's own.
    public var sigs: [String]
    public var ca: String?

    public init(
        storePath: StorePath, narHash: String, narSize: UInt64, references: [String], deriver: String? = nil,
        sigs: [String] = [], ca: String? = nil
    ) {
        self.storePath = storePath
        self.narHash = narHash
        self.narSize = narSize
        self.references = references
        self.deriver = deriver
        self.sigs = sigs
        self.ca = ca
    }
}

public struct PathUploadResult: Codable, Sendable {
    public var storePath: StorePath
    public var narHash: String
    public var narSize: UInt64
    public var fileHash: String
    public var fileSize: UInt64
    /// True when the cache already had the path and the upload was discarded.
    public var alreadyPresent: Bool

    public init(
        storePath: StorePath, narHash: String, narSize: UInt64, fileHash: String, fileSize: UInt64,
        alreadyPresent: Bool
    ) {
        self.storePath = storePath
        self.narHash = narHash
        self.narSize = narSize
        self.fileHash = fileHash
        self.fileSize = fileSize
        self.alreadyPresent = alreadyPresent
    }
}

/// The body of every error response of the API.
public struct APIErrorBody: Codable, Sendable {
    public var error: String
    public init(error: String) { self.error = error }
}
