import Compression
import Foundation
import TestSupport
import Testing

extension CompressionTests {
    /// Capstan's output must be what the real `zstd` and `xz` read, and the other way round.
    @Suite struct CommandLineInterop {
        static func sample(_ size: Int = 10 << 20) -> [UInt8] {
            var generator = PseudoRandomBytes(seed: 41)
            return generator.bytes(size)
        }

        @Test(arguments: [
            (CompressionMethod.zstd, ["zstd", "-d", "-q", "-c"]), (.xz, ["xz", "-d", "-q", "-c"]),
        ])
        func toolsDecompressCapstanOutput(method: CompressionMethod, command: [String]) throws {
            let original = Self.sample(method == .xz ? 3 << 20 : 10 << 20)
            let directory = try TemporaryDirectory()
            let file = directory.sub("data.nar\(method.fileExtension)")
            try Data(stream(original, through: method.makeEncoder())).write(to: URL(fileURLWithPath: file))
            let result = try ProcessRunner.run(command + [file], check: true)
            #expect(result.stdout.count == original.count)
            #expect(result.stdout == Data(original))
        }

        @Test func zstdDecompressesMultithreadedCapstanOutput() throws {
            let original = Self.sample(6 << 20)
            let compressed = try stream(original, through: ZstdEncoder(level: 5, workers: 2))
            let result = try ProcessRunner.run(["zstd", "-d", "-q", "-c"], input: Data(compressed), check: true)
            #expect(result.stdout == Data(original))
        }

        @Test(arguments: [
            (CompressionMethod.zstd, ["zstd", "-3", "-q", "-c"]), (.zstd, ["zstd", "-19", "-T2", "-q", "-c"]),
            (.xz, ["xz", "-6", "-q", "-c"]), (.xz, ["xz", "-1e", "-T2", "-q", "-c"]),
        ])
        func capstanDecompressesToolOutput(method: CompressionMethod, command: [String]) throws {
            // xz and zstd -19 are slow; smaller inputs still span many blocks.
            let original = Self.sample(method == .xz || command.contains("-19") ? 3 << 20 : 10 << 20)
            let directory = try TemporaryDirectory()
            let file = directory.sub("data")
            try Data(original).write(to: URL(fileURLWithPath: file))
            let compressed = try ProcessRunner.run(command + [file], check: true).stdout
            let restored = try stream(Array(compressed), through: method.makeDecoder())
            #expect(restored == original)
        }

        @Test(arguments: [(CompressionMethod.zstd, "zstd"), (.xz, "xz")])
        func toolsReadConcatenatedCapstanFrames(method: CompressionMethod, tool: String) throws {
            let parts = [Array("one ".utf8), Array("two ".utf8), Self.sample(100_000)]
            let joined = try parts.flatMap { try method.compress($0) }
            let result = try ProcessRunner.run([tool, "-d", "-q", "-c"], input: Data(joined), check: true)
            #expect(result.stdout == Data(parts.flatMap { $0 }))
        }

        @Test(arguments: [(CompressionMethod.zstd, "zstd"), (.xz, "xz")])
        func toolsAndCapstanBothRejectTruncatedOutput(method: CompressionMethod, tool: String) throws {
            let compressed = try method.compress(Self.sample(500_000)).dropLast(7)
            let result = try ProcessRunner.run([tool, "-d", "-q", "-c"], input: Data(compressed))
            #expect(result.status != 0)
            #expect(compressionError { _ = try method.decompress(Array(compressed)) }?.kind == .truncatedInput)
        }
    }
}
