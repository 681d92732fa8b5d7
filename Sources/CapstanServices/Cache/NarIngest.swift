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
    /// The bytes as they arrived (compressed in transit), when asked for.
    var transitHash: NixHash?
    var transitSize: UInt64
}

/// The streaming heart of every upload: decompresses what arrives, validates it as a NAR while
/// hashing it, and writes the stored (compressed) form to a blob writer. Nothing is visible
/// until the caller commits the blob and the database row.
final class NarIngest {
    private let decoder: any StreamCodec
    /// Present when the stored compression differs from the one in transit.
    private let encoder: (any StreamCodec)?
    private let writer: any BlobWriter
    /// Stored bytes produced by the encoder, written out after each input chunk.
    private var output = ByteBuffer()
    private var parser: NarParser<NarValidator>
    private var narHasher = NixHasher(.sha256)
    private var fileHasher = NixHasher(.sha256)
    private var narSize: UInt64 = 0
    private var fileSize: UInt64 = 0
    private let maxNarSize: UInt64
    private var transitHasher: NixHasher?
    private var transitSize: UInt64 = 0

    init(
        transit: CompressionMethod, stored: CompressionMethod, writer: any BlobWriter, maxNarSize: UInt64,
        hashTransit: Bool = false
    ) throws {
        transitHasher = hashTransit ? NixHasher(.sha256) : nil
        decoder = try transit.makeDecoder()
        encoder = transit == stored ? nil : try stored.makeEncoder()
        self.writer = writer
        self.maxNarSize = maxNarSize
        parser = NarParser(visitor: NarValidator())
    }

    /// One chunk as it arrived; its stored form is written before the next is read (bounded memory).
    func consume(_ buffer: ByteBuffer) async throws {
        transitSize += UInt64(buffer.readableBytes)
        if transitHasher != nil { buffer.withUnsafeReadableBytes { transitHasher?.update($0) } }
        if encoder == nil {
            buffer.withUnsafeReadableBytes { account($0) }
            try await writer.write(buffer)
        }
        try buffer.withUnsafeReadableBytes { bytes in try decoder.process(bytes) { try self.acceptNar($0) } }
        try await flush()
    }

    func finish() async throws -> IngestResult {
        try decoder.finish { try self.acceptNar($0) }
        try parser.finish()
        if let encoder { try encoder.finish { try self.store($0) } }
        try await flush()
        return IngestResult(
            narHash: narHasher.finalize(), narSize: narSize, fileHash: fileHasher.finalize(), fileSize: fileSize,
            transitHash: transitHasher?.finalize(), transitSize: transitSize)
    }

    private func flush() async throws {
        guard output.readableBytes > 0 else { return }
        try await writer.write(output)
        output.clear()
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
        account(bytes)
        output.writeBytes(bytes)
    }

    private func account(_ bytes: UnsafeRawBufferPointer) {
        fileSize += UInt64(bytes.count)
        fileHasher.update(bytes)
    }
}

extension NarIngest {
    /// Streams `body` through a new ingest into a new blob writer. On any failure the writer is
    /// discarded and the error says what `upload` was; on success the caller commits or discards it.
    static func run<Body: AsyncSequence>(
        _ body: Body, blobs: any BlobStore, transit: CompressionMethod, stored: CompressionMethod, maxNarSize: UInt64,
        hashTransit: Bool = false, upload: String
    ) async throws -> (result: IngestResult, writer: any BlobWriter) where Body.Element == ByteBuffer {
        let writer = try await blobs.makeWriter()
        do {
            let ingest = try NarIngest(
                transit: transit, stored: stored, writer: writer, maxNarSize: maxNarSize, hashTransit: hashTransit)
            for try await buffer in body { try await ingest.consume(buffer) }
            return (try await ingest.finish(), writer)
        } catch let error as ServiceError {
            await writer.discard()
            throw error
        } catch {
            await writer.discard()
            throw ServiceError.badRequest(
                "\(upload) is not a valid \(transit == .none ? "" : transit.rawValue + "-compressed ")NAR: \(error)")
        }
    }
}
