import Foundation
import NixCore

/// A store path held by a cache: what its narinfo says and which blob holds its (compressed) NAR.
public struct PathRecord: Sendable, Equatable, Hashable {
    public var cacheID: String
    /// The 32-character nix32 hash part of the store path, the narinfo's name.
    public var hashPart: String
    public var storePath: StorePath
    /// `sha256:<nix32>` of the uncompressed NAR.
    public var narHash: String
    public var narSize: Int64
    /// The blob's name in the blob store, e.g. `<filehash>.nar.zst`.
    public var fileName: String
    public var fileHash: String
    public var fileSize: Int64
    public var compression: String
    /// Base names (`<hash>-<name>`) of the paths this one refers to.
    public var references: [String]
    /// Base name of the deriver.
    public var deriver: String?
    /// Signatures in Nix's `keyname:base64` form.
    public var sigs: [String]
    public var ca: String?
    public var createdAt: Date

    public init(
        cacheID: String, hashPart: String, storePath: StorePath, narHash: String, narSize: Int64, fileName: String,
        fileHash: String, fileSize: Int64, compression: String, references: [String], deriver: String? = nil,
        sigs: [String] = [], ca: String? = nil, createdAt: Date
    ) {
        self.cacheID = cacheID
        self.hashPart = hashPart
        self.storePath = storePath
        self.narHash = narHash
        self.narSize = narSize
        self.fileName = fileName
        self.fileHash = fileHash
        self.fileSize = fileSize
        self.compression = compression
        self.references = references
        self.deriver = deriver
        self.sigs = sigs
        self.ca = ca
        self.createdAt = createdAt
    }

    /// The hash parts of `references` (the text before the first '-'), which the reference graph stores.
    public var referenceHashParts: [String] {
        references.map { reference in
            let base = reference.split(separator: "/").last.map(String.init) ?? reference
            return base.split(separator: "-", maxSplits: 1).first.map(String.init) ?? base
        }
    }
}
