import Foundation
import NIOCore

/// Where blobs live, by what they are for. Every backend lays them out under the same relative
/// paths (`nar/<name>`, `staging/<cache>/<file>`, `multipart/<upload>/…`), as files or as object keys.
public enum BlobKey: Hashable, Sendable, CustomStringConvertible {
    /// A stored NAR, content-addressed: `<FileHash in nix32>.nar<.zst|.xz>`.
    case nar(String)
    /// A NAR uploaded by `nix copy`, kept aside until its narinfo arrives and it has been checked.
    case staged(cacheID: String, fileName: String)
    /// One part of a multipart (cachix) upload.
    case part(uploadID: String, number: Int)
    /// What a multipart upload is (its cache, its NAR, its compression).
    case upload(uploadID: String)

    /// The key as a relative path; every component checked so that none can leave its directory.
    public func relativePath() throws(BlobStoreError) -> String {
        switch self {
        case .nar(let name):
            try Self.validate(name)
            return "nar/" + name
        case .staged(let cacheID, let fileName):
            try Self.validate(cacheID)
            try Self.validate(fileName)
            return "staging/\(cacheID)/\(fileName)"
        case .part(let uploadID, let number):
            try Self.validate(uploadID)
            return "multipart/\(uploadID)/part-\(number)"
        case .upload(let uploadID):
            try Self.validate(uploadID)
            return "multipart/\(uploadID)/upload.json"
        }
    }

    public var description: String { (try? relativePath()) ?? "invalid blob key" }

    /// One path component: not empty, no '/', no NUL, not '.' or '..'.
    static func validate(_ name: String) throws(BlobStoreError) {
        if name.isEmpty { throw .invalidName(name, reason: "it is empty") }
        if name == "." || name == ".." { throw .invalidName(name, reason: "'.' and '..' are not file names") }
        if name.utf8.contains(UInt8(ascii: "/")) { throw .invalidName(name, reason: "it contains '/'") }
        if name.utf8.contains(0) { throw .invalidName(name, reason: "it contains a NUL byte") }
        if name.utf8.count > 255 { throw .invalidName(name, reason: "it is longer than 255 bytes") }
    }
}

/// A group of keys to list.
public enum BlobPrefix: Sendable, Equatable {
    case nars
    /// Every staged NAR, of every cache.
    case staged
    /// Every multipart upload's description.
    case uploads
    /// The parts of one multipart upload.
    case parts(uploadID: String)
}

/// A listed blob.
public struct BlobEntry: Sendable, Equatable {
    public var key: BlobKey
    public var size: Int64
    /// When it was last written.
    public var modified: Date

    public init(key: BlobKey, size: Int64, modified: Date) {
        self.key = key
        self.size = size
        self.modified = modified
    }
}

/// A blob's bytes, read as the consumer asks for them (back-pressure: nothing is read ahead).
public typealias BlobBytes = AsyncThrowingStream<ByteBuffer, any Error>

/// The seam between Capstan's rules and where bytes are kept. No service sees a file path:
/// they write through a `BlobWriter` that commits atomically under a key, and read, list and
/// delete by key. The filesystem store is the default; an object store is another implementation.
public protocol BlobStore: Sendable {
    /// Starts a new blob; its bytes are invisible until the writer commits them under a key.
    func makeWriter() async throws -> any BlobWriter
    /// The size in bytes of a committed blob, nil when there is none.
    func size(of key: BlobKey) async throws -> Int64?
    /// The blob's bytes (those in `range` when given), nil when there is no such blob.
    func read(_ key: BlobKey, range: Range<Int64>?) async throws -> BlobBytes?
    /// Removes a blob; false when it was not there.
    @discardableResult
    func delete(_ key: BlobKey) async throws -> Bool
    /// The blobs under a prefix.
    func list(_ prefix: BlobPrefix) async throws -> [BlobEntry]
    /// A local file holding exactly the blob's bytes, for zero-copy serving; nil where blobs are
    /// not files (an object store) or the blob is missing.
    func localFile(of key: BlobKey) -> String?
    /// A URL from which anyone may GET the blob for `expires` seconds, for redirecting downloads to
    /// the store itself; nil where the store has none (files).
    func presignedURL(of key: BlobKey, expires: Int) -> String?
}

extension BlobStore {
    public func read(_ key: BlobKey) async throws -> BlobBytes? { try await read(key, range: nil) }

    public func localFile(of key: BlobKey) -> String? { nil }

    public func presignedURL(of key: BlobKey, expires: Int) -> String? { nil }

    /// A small blob (a description, not a NAR) read whole; nil when it is missing or larger than `limit`.
    public func contents(of key: BlobKey, limit: Int = 1 << 20) async throws -> [UInt8]? {
        guard let bytes = try await read(key) else { return nil }
        var result: [UInt8] = []
        for try await buffer in bytes {
            guard result.count + buffer.readableBytes <= limit else { return nil }
            result += buffer.readableBytesView
        }
        return result
    }

    /// Writes a small blob whole and commits it under `key`.
    public func put(_ bytes: [UInt8], as key: BlobKey) async throws {
        let writer = try await makeWriter()
        do {
            try await writer.write(ByteBuffer(bytes: bytes))
            try await writer.commit(as: key)
        } catch {
            await writer.discard()
            throw error
        }
    }
}

/// One blob being written, by one task. Nothing of it is visible until `commit(as:)`, which makes
/// it durable and appear whole under its key (replacing what was there: names are content addresses
/// or belong to one upload). A writer neither committed nor discarded leaves nothing behind.
///
/// A NAR is committed under its content key before the database transaction that makes its path
/// visible, which then only records rows: a blob committed for a path that is never recorded (a
/// lost race, a crash) is left to garbage collection, which deletes blobs no path uses.
public protocol BlobWriter: AnyObject {
    var bytesWritten: Int64 { get }
    func write(_ buffer: ByteBuffer) async throws
    func commit(as key: BlobKey) async throws
    /// Abandons the blob. Safe to call more than once, and after a failed commit.
    func discard() async
}
