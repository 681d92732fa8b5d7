import Compression
import TestSupport
import Testing

extension CompressionTests {
    @Suite struct AsyncStreaming {
        /// Chunks arriving like request body parts.
        static func chunks(of data: [UInt8], size: Int) -> AsyncStream<ArraySlice<UInt8>> {
            AsyncStream { continuation in
                var offset = 0
                while offset < data.count {
                    continuation.yield(data[offset..<min(offset + size, data.count)])
                    offset += size
                }
                continuation.finish()
            }
        }

        @Test(arguments: [CompressionMethod.zstd, .xz, .none])
        func asyncSequenceRoundTripsThroughAnAwaitingSink(method: CompressionMethod) async throws {
            var generator = PseudoRandomBytes(seed: 31)
            let original = generator.bytes(3 << 20)
            var compressed: [UInt8] = []
            try await method.makeEncoder().process(chunks: Self.chunks(of: original, size: 64 * 1024)) { piece in
                compressed.append(contentsOf: piece)
                await Task.yield()
            }
            var restored: [UInt8] = []
            var largestPiece = 0
            let decoder = try method.makeDecoder()
            try await decoder.process(chunks: Self.chunks(of: compressed, size: 10_000)) { piece in
                largestPiece = max(largestPiece, piece.count)
                restored.append(contentsOf: piece)
                await Task.yield()
            }
            #expect(restored == original)
            #expect(largestPiece <= decoder.preferredOutputSize)
        }

        /// A server-side owner: the codec lives inside one actor, fed from its methods.
        actor Uploader {
            let decoder: ZstdDecoder
            var received = 0
            init() throws { decoder = try ZstdDecoder() }

            func receive(_ chunk: [UInt8]) async throws {
                try await decoder.process(chunk) { piece in
                    self.received += piece.count
                    await Task.yield()
                }
            }

            func end() async throws -> Int {
                try await decoder.finish { piece in
                    self.received += piece.count
                    await Task.yield()
                }
                return received
            }
        }

        @Test func codecsWorkInsideAnActor() async throws {
            // 64 MiB of zeros compresses to almost nothing: one small chunk expands a lot.
            let bomb = try CompressionMethod.zstd.compress([UInt8](repeating: 0, count: 64 << 20))
            #expect(bomb.count < 64 * 1024)
            let uploader = try Uploader()
            try await uploader.receive(bomb)
            #expect(try await uploader.end() == 64 << 20)
        }
    }
}
