import Compression
import Foundation
import Testing

extension CompressionTests {
    /// Throughput of Capstan's codecs on a real file; run by Benchmarks/compression.sh
    /// (`CAPSTAN_BENCH=1 CAPSTAN_BENCH_INPUT=FILE`), skipped otherwise.
    @Suite(.enabled(if: ProcessInfo.processInfo.environment["CAPSTAN_BENCH"] == "1"))
    struct Benchmark {
        static var inputPath: String { ProcessInfo.processInfo.environment["CAPSTAN_BENCH_INPUT"] ?? "" }

        /// Reads the file in 64 KiB chunks, as the server receives a request body.
        static func eachChunk(of path: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            defer { try? handle.close() }
            while let data = try handle.read(upToCount: 64 * 1024), !data.isEmpty {
                try data.withUnsafeBytes(body)
            }
        }

        static func report(_ what: String, bytes: Int, output: Int, seconds: Double) {
            let mib = Double(bytes) / 1_048_576
            print(
                String(
                    format: "capstan-bench %@: %.0f MiB in %.2f s = %.0f MiB/s, output %.1f%% of input", what, mib,
                    seconds, mib / seconds, 100 * Double(output) / Double(bytes)))
        }

        @Test(arguments: [Int32(0), 2])
        func zstdLevel3(workers: Int32) throws {
            let encoder = try ZstdEncoder(level: 3, workers: workers)
            var input = 0
            var output = 0
            let count: (UnsafeRawBufferPointer) -> Void = { output += $0.count }
            let start = ContinuousClock.now
            try Self.eachChunk(of: Self.inputPath) { chunk in
                input += chunk.count
                try encoder.process(chunk, into: count)
            }
            try encoder.finish(into: count)
            let elapsed = ContinuousClock.now - start
            Self.report(
                "zstd -3 compress, \(workers) workers", bytes: input, output: output,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }

        @Test func zstdDecompress() throws {
            let compressedPath = Self.inputPath + ".zst"
            let decoder = try ZstdDecoder()
            var input = 0
            var output = 0
            let count: (UnsafeRawBufferPointer) -> Void = { output += $0.count }
            let start = ContinuousClock.now
            try Self.eachChunk(of: compressedPath) { chunk in
                input += chunk.count
                try decoder.process(chunk, into: count)
            }
            try decoder.finish(into: count)
            let elapsed = ContinuousClock.now - start
            // Throughput counted on the decompressed side, as `zstd -d` reports it.
            Self.report(
                "zstd decompress", bytes: output, output: input,
                seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
    }
}
