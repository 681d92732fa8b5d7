import Compression
import NIOCore
import TestSupport
import Testing

@testable import CapstanClient

/// The pusher's compressor writes zstd straight into the buffers it uploads; what it sends, put
/// together, must decompress to exactly what went in.
struct CompressedChunkerTests {
    func roundTrip(_ input: [UInt8], pieceSize: Int) throws -> (output: [UInt8], sent: [ByteBuffer]) {
        var sent: [ByteBuffer] = []
        var chunker = CompressedChunker(encoder: try ZstdEncoder(level: 3)) { sent.append($0) }
        try input.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let end = min(offset + pieceSize, raw.count)
                try chunker.process(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
                offset = end
            }
        }
        try chunker.finish()
        let compressed = sent.flatMap { Array($0.readableBytesView) }
        return (try ZstdDecoder().transform(compressed), sent)
    }

    @Test(arguments: [1, 4096, 1 << 20])
    func incompressibleInputCrossingManyBuffersRoundTrips(pieceSize: Int) throws {
        let input = [UInt8](NarCorpus.deterministicBytes(count: (3 << 20) + 17, seed: 5))
        let (output, sent) = try roundTrip(input, pieceSize: max(pieceSize, 4096))
        #expect(output == input)
        #expect(sent.count >= 3)
        #expect(sent.dropLast().allSatisfy { $0.readableBytes >= CompressedChunker.sendSize })
    }

    @Test func compressibleInputRoundTrips() throws {
        let input = [UInt8](repeating: UInt8(ascii: "a"), count: 5 << 20) + Array("end".utf8)
        let (output, sent) = try roundTrip(input, pieceSize: 1 << 20)
        #expect(output == input)
        #expect(sent.reduce(0) { $0 + $1.readableBytes } < 64 << 10)
    }

    @Test func emptyInputIsOneEmptyFrame() throws {
        let (output, sent) = try roundTrip([], pieceSize: 1)
        #expect(output.isEmpty)
        #expect(sent.count == 1)
    }
}
