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

    public init(
        id: String, workspaceID: String, name: String, isPublic: Bool, keyName: String, secretKey: String,
        publicKey: String, compression: String, priority: Int, createdAt: Date
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
    }
}
