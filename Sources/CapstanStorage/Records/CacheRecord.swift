import Foundation

/// A binary cache with its signing key.
public struct CacheRecord: Sendable, Equatable, Hashable {
    public var id: String
    public var workspaceID: String
    /// Unique across the server: it is part of the cache's URL.
    public var name: String
    /// Public caches can be read without a token.
    public var isPublic: Bool
    public var keyName: String
    /// The ed25519 secret key in Nix's `name:base64` form.
    public var secretKey: String
    /// The ed25519 public key in Nix's `name:base64` form.
    public var publicKey: String
    /// How NARs are stored: `zstd`, `xz` or `none`.
    public var compression: String
    /// The `Priority` of `nix-cache-info`: lower is preferred by Nix.
    public var priority: Int
    public var createdAt: Date
    /// Seconds a path is kept after its last download or upload; nil: forever.
    public var retentionSeconds: Int64?
    /// The most its paths' stored files may take, in bytes; nil: no bound.
    public var maxSize: Int64?
    /// How many of each agent's last successful deployments stay pinned.
    public var keepGenerations: Int
    public var lastGCAt: Date?

    public static let defaultKeepGenerations = 3

    public init(
        id: String, workspaceID: String, name: String, isPublic: Bool, keyName: String, secretKey: String,
        publicKey: String, compression: String, priority: Int, createdAt: Date, retentionSeconds: Int64? = nil,
        maxSize: Int64? = nil, keepGenerations: Int = CacheRecord.defaultKeepGenerations, lastGCAt: Date? = nil
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.name = name
        self.isPublic = isPublic
        self.keyName = keyName
        self.secretKey = secretKey
        self.publicKey = publicKey
        self.compression = compression
        self.priority = priority
        self.createdAt = createdAt
        self.retentionSeconds = retentionSeconds
        self.maxSize = maxSize
        self.keepGenerations = keepGenerations
        self.lastGCAt = lastGCAt
    }
}
