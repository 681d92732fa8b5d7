import CapstanStorage
import Compression
import NIOCore
import NixCore

/// What the server learned about an upload while streaming it.
struct IngestResult: Sendable {
    var narHash: NixHash
    var narSize: UInt64
    var fileHash: NixHash
    var fileSize: UInt64
}

/// The streaming heart of every upload: decompresses what arrives, validates it as a NAR while
/// hashing it, and writes the stored (compressed) form to a temporary blob. Nothing is visible
/// until the caller commits the blob and the database row.
final class NarIngest {
    private let decoder: any StreamCodec
    /// Present when the stored compression differs from the one in transit.
    private let encoder: (any StreamCodec)?
    private let writer: BlobWriter
    private var parser: NarParser<NarValidator>
    private var narHasher = NixHasher(.sha256)
    private var fileHasher = NixHasher(.sha256)
    private var narSize: UInt64 = 0
    private var fileSize: UInt64 = 0
    private let maxNarSize: UInt64

    init(transit: CompressionMethod, stored: CompressionMethod, writer: BlobWriter, maxNarSize: UInt64) throws {
        decoder = try transit.makeDecoder()
        encoder = transit == stored ? nil : try stored.makeEncoder()
        self.writer = writer
        self.maxNarSize = maxNarSize
        parser = NarParser(visitor: NarValidator())
    }

    func consume(_ buffer: ByteBuffer) throws {
        try buffer.withUnsafeReadableBytes { try consume($0) }
    }

    func consume(_ bytes: UnsafeRawBufferPointer) throws {
        if encoder == nil { try store(bytes) }
        try decoder.process(bytes) { try self.acceptNar($0) }
    }

    func finish() throws -> IngestResult {
        try decoder.finish { try self.acceptNar($0) }
        try parser.finish()
        if let encoder { try encoder.finish { try self.store($0) } }
        return IngestResult(
            narHash: narHasher.finalize(), narSize: narSize, fileHash: fileHasher.finalize(), fileSize: fileSize)
    }

    private func acceptNar(_ bytes: UnsafeRawBufferPointer) throws {
        narSize += UInt64(bytes.count)
        guard narSize <= maxNarSize else {
            throw ServiceError(.payloadTooLarge, "the NAR is larger than this server accepts (\(maxNarSize) bytes)")
        }
        narHasher.update(bytes)
        try parser.feed(bytes)
        if let encoder { try encoder.process(bytes) { try self.store($0) } }
    }

    private func store(_ bytes: UnsafeRawBufferPointer) throws {
        fileSize += UInt64(bytes.count)
        fileHasher.update(bytes)
        try writer.write(bytes)
    }
}
