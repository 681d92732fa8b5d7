import Compression
import TestSupport
import Testing

extension CompressionTests {
    @Suite struct MalformedInput {
        static func sample() throws -> (plain: [UInt8], zstd: [UInt8], xz: [UInt8]) {
            var generator = PseudoRandomBytes(seed: 21)
            let plain = generator.bytes(1 << 20)
            return (plain, try CompressionMethod.zstd.compress(plain), try CompressionMethod.xz.compress(plain))
        }

        @Test(arguments: [1, 10, 1000, 100_000])
        func truncatedZstdFailsAtFinish(dropped: Int) throws {
            let zstd = try Self.sample().zstd
            let error = compressionError { _ = try ZstdDecoder().transform(zstd.dropLast(dropped)) }
            #expect(error?.kind == .truncatedInput)
            #expect(error?.description.hasPrefix("zstd: input is truncated (stream ended inside a frame") == true)
        }

        @Test(arguments: [1, 10, 1000, 100_000])
        func truncatedXzFailsAtFinish(dropped: Int) throws {
            let xz = try Self.sample().xz
            let error = compressionError { _ = try XzDecoder().transform(xz.dropLast(dropped)) }
            #expect(error?.kind == .truncatedInput)
            #expect(error?.description.hasPrefix("xz: input is truncated") == true)
        }

        @Test(arguments: [CompressionMethod.zstd, .xz])
        func truncatedAfterAWholeFrameStillFails(method: CompressionMethod) throws {
            let whole = try method.compress(Array("complete".utf8))
            let cut = try method.compress(Array("cut short".utf8))
            let error = compressionError { _ = try method.makeDecoder().transform(whole + cut.dropLast(4)) }
            #expect(error?.kind == .truncatedInput)
        }

        @Test(arguments: [CompressionMethod.zstd, .xz])
        func emptyInputIsNotAStream(method: CompressionMethod) throws {
            let error = compressionError { _ = try method.makeDecoder().transform([]) }
            #expect(error?.kind == .truncatedInput)
            #expect(error?.message.contains("empty") == true)
        }

        @Test(arguments: [CompressionMethod.zstd, .xz])
        func flippedBytesAreCaught(method: CompressionMethod) throws {
            var data = try method == .zstd ? Self.sample().zstd : Self.sample().xz
            // Past the header, inside the data; the checksum catches it even in a stored block.
            data[data.count / 2] ^= 0x5A
            data[data.count / 2 + 1] ^= 0xA5
            let error = compressionError { _ = try stream(data, through: method.makeDecoder()) }
            #expect(error?.kind == .corruptInput)
            #expect(error?.codec == method.narInfoName)
        }

        @Test(arguments: [CompressionMethod.zstd, .xz])
        func foreignDataIsRejectedWithItsOffset(method: CompressionMethod) throws {
            let gzipHeader: [UInt8] = [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]
            let error = compressionError { _ = try method.makeDecoder().transform(gzipHeader) }
            #expect(error?.kind == .corruptInput)
            // liblzma reads the whole 12-byte header before judging it; zstd judges the magic number.
            #expect(error?.message.contains(method == .zstd ? "input byte 0:" : "file format not recognized") == true)
            #expect(error?.message.contains("near input byte") == true, "\(String(describing: error))")
        }

        @Test func trailingGarbageAfterAFrameIsRejected() throws {
            let frame = try CompressionMethod.zstd.compress(Array("ok".utf8))
            let error = compressionError { _ = try ZstdDecoder().transform(frame + Array("garbage!".utf8)) }
            #expect(error?.kind == .corruptInput)
            #expect(error?.message.contains("input byte \(frame.count)") == true)
        }

        @Test func xzDecoderHonoursItsMemoryLimit() throws {
            var generator = PseudoRandomBytes(seed: 22)
            // Preset 9 asks for a 64 MiB dictionary.
            let data = try XzEncoder(preset: 9).transform(generator.bytes(1000))
            let error = compressionError { _ = try XzDecoder(memoryLimit: 16 << 20).transform(data) }
            #expect(error?.kind == .memoryLimit)
            #expect(error?.message.contains("limit of 16 MiB") == true)
        }

        @Test func invalidParametersAreRejected() {
            #expect(compressionError { _ = try ZstdEncoder(level: 99) }?.kind == .invalidParameter)
            #expect(compressionError { _ = try ZstdEncoder(workers: -1) }?.kind == .invalidParameter)
            #expect(compressionError { _ = try XzEncoder(preset: 10) }?.kind == .invalidParameter)
        }
    }

    @Suite struct Method {
        @Test(arguments: [
            ("zstd", CompressionMethod.zstd, ".zst"), ("xz", .xz, ".xz"), ("none", .none, ""), ("", .none, ""),
            ("bzip2", .bzip2, ".bz2"),
        ])
        func narInfoNamesAndExtensions(name: String, method: CompressionMethod, fileExtension: String) throws {
            #expect(try CompressionMethod(narInfoName: name) == method)
            #expect(method.fileExtension == fileExtension)
            if !name.isEmpty { #expect(method.narInfoName == name) }
        }

        @Test func missingCompressionFieldMeansBzip2() {
            #expect(CompressionMethod.narInfoDefault == .bzip2)
        }

        @Test func bzip2IsKnownButUnsupported() {
            #expect(!CompressionMethod.bzip2.isSupported)
            let error = compressionError { _ = try CompressionMethod.bzip2.makeDecoder() }
            #expect(error?.kind == .unsupportedMethod)
            #expect(error?.description.hasPrefix("bzip2: bzip2 NARs are not supported") == true)
        }

        @Test func unknownNamesSayWhatIsAccepted() {
            let error = compressionError { _ = try CompressionMethod(narInfoName: "br") }
            #expect(error?.description == "br: unknown compression method \"br\" (Capstan reads none, zstd and xz)")
        }

        @Test func codecsReportTheirMethod() throws {
            for method in [CompressionMethod.none, .zstd, .xz] {
                #expect(try method.makeEncoder().method == method)
                #expect(try method.makeDecoder().method == method)
            }
        }
    }
}
