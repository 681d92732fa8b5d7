import CLZMA

/// Streaming xz decompression (`lzma_stream_decoder`) of one or more concatenated streams.
public final class XzDecoder: StreamCodec {
    private let stream = LZMAStream()
    public let memoryLimit: UInt64

    /// Enough for every preset (`xz -9` needs 65 MiB) while refusing hostile dictionary sizes.
    public static let defaultMemoryLimit: UInt64 = 256 << 20

    public init(memoryLimit: UInt64 = XzDecoder.defaultMemoryLimit) throws {
        self.memoryLimit = memoryLimit
        // LZMA_CONCATENATED is a macro Swift does not import: decode streams back to back, like `xz -d`.
        let concatenated: UInt32 = 0x08
        let result = lzma_stream_decoder(stream.pointer, memoryLimit, concatenated)
        guard result == LZMA_OK else {
            throw CompressionError(
                codec: "xz", kind: .library, message: "cannot start the decoder: \(describe(result))")
        }
    }

    public var method: CompressionMethod { .xz }
    public var preferredOutputSize: Int { 128 * 1024 }

    /// Bytes of memory the decoder uses now (mostly the dictionary the input asked for).
    public var memoryUsage: UInt64 { stream.memoryUsage }

    public func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws -> CodecStep
    {
        let offset = stream.inputOffset
        let (step, result) = stream.code(input, into: output, finishing: finishing)
        switch result {
        case LZMA_OK, LZMA_STREAM_END:
            return step
        case LZMA_BUF_ERROR where !finishing:
            // No progress possible with this input; more input will come.
            return step
        case LZMA_BUF_ERROR:
            let what =
                stream.inputOffset == 0
                ? "input is empty (no xz stream)"
                : "input is truncated (stream ended after \(stream.inputOffset) bytes)"
            throw CompressionError(codec: "xz", kind: .truncatedInput, message: "\(what): \(describe(result))")
        case LZMA_MEMLIMIT_ERROR:
            throw CompressionError(
                codec: "xz", kind: .memoryLimit,
                message:
                    "input needs \(stream.memoryUsage >> 20) MiB to decode, more than the limit of \(memoryLimit >> 20) MiB: \(describe(result))"
            )
        default:
            throw CompressionError(
                codec: "xz", kind: .corruptInput,
                message: "cannot decode near input byte \(offset + step.consumed): \(describe(result))")
        }
    }
}
