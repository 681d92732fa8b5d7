import Compression
import TestSupport
import Testing

extension CompressionTests {
    @Suite struct RoundTrip {
        static let methods: [CompressionMethod] = [.zstd, .xz, .none]

        @Test(arguments: methods, [0, 1, 2, 4097, 10 << 20])
        func streamedInRandomChunksRoundTrips(method: CompressionMethod, size: Int) throws {
            var generator = PseudoRandomBytes(seed: UInt64(size) &+ 7)
            let original = generator.bytes(size)
            let compressed = try stream(original, through: method.makeEncoder(), seed: 3)
            if method != .none { #expect(!compressed.isEmpty, "even empty input makes a frame") }
            let restored = try stream(compressed, through: method.makeDecoder(), seed: 5)
            #expect(restored.count == original.count)
            #expect(restored == original)
        }

        @Test(arguments: [CompressionMethod.zstd, .xz])
        func compressibleDataShrinks(method: CompressionMethod) throws {
            let text = Array(String(repeating: "/nix/store/aaaa-hello-2.12.1/bin/hello\n", count: 4000).utf8)
            let compressed = try method.compress(text)
            #expect(compressed.count < text.count / 20)
            #expect(try method.decompress(compressed) == text)
        }

        @Test(arguments: [Int32(-5), 1, 3, 19])
        func everyZstdLevelRoundTrips(level: Int32) throws {
            var generator = PseudoRandomBytes(seed: 11)
            let original = generator.bytes(300_000)
            let compressed = try ZstdEncoder(level: level).transform(original)
            #expect(try ZstdDecoder().transform(compressed) == original)
        }

        @Test func multithreadedZstdRoundTrips() throws {
            var generator = PseudoRandomBytes(seed: 12)
            let original = generator.bytes(12 << 20)
            let compressed = try stream(original, through: ZstdEncoder(level: 3, workers: 2))
            #expect(try stream(compressed, through: ZstdDecoder()) == original)
        }

        @Test(arguments: [UInt32(0), 6, 9])
        func xzPresetsRoundTrip(preset: UInt32) throws {
            var generator = PseudoRandomBytes(seed: 13)
            let original = generator.bytes(200_000)
            let compressed = try XzEncoder(preset: preset).transform(original)
            #expect(try XzDecoder().transform(compressed) == original)
        }

        @Test(arguments: [CompressionMethod.zstd, .xz])
        func concatenatedFramesDecodeAsOneStream(method: CompressionMethod) throws {
            var generator = PseudoRandomBytes(seed: 14)
            let parts = [generator.bytes(100_000), [], generator.bytes(3), generator.bytes(70_000)]
            let joined = try parts.flatMap { try method.compress($0) }
            #expect(try stream(joined, through: method.makeDecoder(), maxChunk: 5000) == parts.flatMap { $0 })
        }

        @Test func encodersStartANewFrameAfterFinishing() throws {
            let encoder = try ZstdEncoder()
            let first = try encoder.transform(Array("first".utf8))
            let second = try encoder.transform(Array("second".utf8))
            #expect(try ZstdDecoder().transform(first + second) == Array("firstsecond".utf8))
        }
    }
}
