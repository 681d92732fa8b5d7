import Compression
import NixCore
import TestSupport
import Testing

extension CompressionTests {
    /// A NAR much larger than any buffer goes through encoder and decoder in random-sized chunks;
    /// neither the codecs nor the process may grow with the input.
    @Suite struct BoundedMemory {
        static let allowedGrowth = 64 << 20

        struct Case: Sendable, CustomTestStringConvertible {
            var method: CompressionMethod
            var size: Int
            var makeEncoder: @Sendable () throws -> any StreamCodec
            var testDescription: String { "\(method) \(size >> 20) MiB" }
        }

        @Test(arguments: [
            Case(method: .zstd, size: 300 << 20) { try ZstdEncoder(level: 3) },
            Case(method: .zstd, size: 300 << 20) { try ZstdEncoder(level: 3, workers: 2) },
            // xz is slow; preset 1 keeps the test short and still streams far more than any buffer.
            Case(method: .xz, size: 96 << 20) { try XzEncoder(preset: 1) },
        ])
        func largeInputStreamsInBoundedMemory(_ testCase: Case) throws {
            let encoder = try testCase.makeEncoder()
            let decoder = try testCase.method.makeDecoder()
            var generator = PseudoRandomBytes(seed: 51)
            var chunkSizes = PseudoRandomBytes(seed: 52)
            var inputHash = NixHasher(.sha256)
            var outputHash = NixHasher(.sha256)
            var compressedSize = 0
            var restoredSize = 0
            var codecMemory: [Int] = []

            let peakWasReset = ProcessMemory.resetPeak()
            let residentBefore = try #require(ProcessMemory.resident, "needs /proc/self/status")
            var residentMax = residentBefore

            let maxChunk = 256 * 1024
            let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: maxChunk, alignment: 16)
            defer { chunk.deallocate() }
            let decode: (UnsafeRawBufferPointer) throws -> Void = { compressed in
                compressedSize += compressed.count
                try decoder.process(compressed) { restored in
                    restoredSize += restored.count
                    outputHash.update(restored)
                }
            }
            var remaining = testCase.size
            var chunks = 0
            while remaining > 0 {
                let size = min(remaining, Int(chunkSizes.next() % UInt64(maxChunk)) + 1)
                let piece = UnsafeMutableRawBufferPointer(rebasing: chunk[..<size])
                generator.fill(piece)
                inputHash.update(UnsafeRawBufferPointer(piece))
                try encoder.process(UnsafeRawBufferPointer(piece), into: decode)
                remaining -= size
                chunks += 1
                if chunks % 64 == 0 {
                    residentMax = max(residentMax, ProcessMemory.resident ?? 0)
                    codecMemory.append(Self.memoryUsage(encoder) + Self.memoryUsage(decoder))
                }
            }
            try encoder.finish(into: decode)
            try decoder.finish { restored in
                restoredSize += restored.count
                outputHash.update(restored)
            }
            residentMax = max(residentMax, ProcessMemory.resident ?? 0)

            #expect(restoredSize == testCase.size)
            #expect(inputHash.finalize() == outputHash.finalize())
            #expect(compressedSize < testCase.size, "the generated data is partly compressible")

            // The codecs' own buffers do not grow with the input: the second half of the run peaks no
            // higher than the first (worker buffers come and go, hence the margin), and stays small.
            let firstHalf = codecMemory[..<(codecMemory.count / 2)].max() ?? 0
            let secondHalf = codecMemory[(codecMemory.count / 2)...].max() ?? 0
            #expect(secondHalf <= firstHalf + firstHalf / 4, "codec memory grew: \(codecMemory)")
            #expect(secondHalf < 128 << 20)

            let peak = peakWasReset ? (ProcessMemory.peakResident ?? residentMax) : residentMax
            let growth = peak - residentBefore
            print(
                "bounded memory: \(testCase.testDescription): codec peak \(secondHalf >> 20) MiB, process peak growth \(growth >> 20) MiB (\(peakWasReset ? "VmHWM" : "sampled VmRSS")), compressed \(compressedSize >> 20) MiB"
            )
            // Worker threads hold job buffers the codec reports; those are fixed by the worker count.
            #expect(
                growth < Self.allowedGrowth + (testCase.method == .zstd ? secondHalf : 0),
                "peak resident grew by \(growth >> 20) MiB streaming \(testCase.size >> 20) MiB")
        }

        /// The instrument itself: holding 96 MiB must show as growth, or the check above proves nothing.
        @Test func peakMeasurementSeesABufferedInput() throws {
            let peakWasReset = ProcessMemory.resetPeak()
            let before = try #require(ProcessMemory.resident)
            var held = [UInt8](repeating: 1, count: 96 << 20)
            held[held.count - 1] = 2
            let during = try #require(peakWasReset ? ProcessMemory.peakResident : ProcessMemory.resident)
            #expect(held.last == 2)
            #expect(during - before >= Self.allowedGrowth, "measured only \((during - before) >> 20) MiB")
        }

        static func memoryUsage(_ codec: any StreamCodec) -> Int {
            switch codec {
            case let zstd as ZstdEncoder: zstd.memoryUsage
            case let zstd as ZstdDecoder: zstd.memoryUsage
            case let xz as XzEncoder: Int(xz.memoryUsage)
            case let xz as XzDecoder: Int(xz.memoryUsage)
            default: 0
            }
        }
    }
}
