import CLZMA

/// Streaming xz compression (`lzma_easy_encoder`) with a CRC64 check, as the `xz` command writes.
public final class XzEncoder: StreamCodec {
    private let stream = LZMAStream()

    /// The preset `xz` itself defaults to.
    public static let defaultPreset: UInt32 = 6

    /// - Parameters:
    ///   - preset: 0 (fastest) ... 9 (smallest).
    ///   - extreme: `xz -e`: slower, sometimes a little smaller.
    public init(preset: UInt32 = XzEncoder.defaultPreset, extreme: Bool = false) throws {
        guard preset <= 9 else {
            throw CompressionError(codec: "xz", kind: .invalidParameter, message: "preset \(preset) is outside 0...9")
        }
        // LZMA_PRESET_EXTREME is a function-like macro that Swift does not import.
        let flags = preset | (extreme ? UInt32(1) << 31 : 0)
        let result = lzma_easy_encoder(stream.pointer, flags, LZMA_CHECK_CRC64)
        guard result == LZMA_OK else {
            throw CompressionError(
                codec: "xz", kind: result == LZMA_MEM_ERROR ? .library : .invalidParameter,
                message: "cannot start the encoder with preset \(preset): \(describe(result))")
        }
    }

    public var method: CompressionMethod { .xz }
    public var preferredOutputSize: Int { 64 * 1024 }

    /// Bytes of memory the encoder uses (dictionary, match finder, buffers).
    public var memoryUsage: UInt64 { stream.memoryUsage }

    public func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws -> CodecStep
    {
        let (step, result) = stream.code(input, into: output, finishing: finishing)
        switch result {
        case LZMA_OK, LZMA_STREAM_END:
            return step
        case LZMA_BUF_ERROR:
            // No progress was possible on this call; the caller's loop decides whether that is an end.
            return step
        default:
            throw CompressionError(codec: "xz", kind: .library, message: "compression failed: \(describe(result))")
        }
    }
}
