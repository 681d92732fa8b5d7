import CZstd

/// Streaming zstd decompression (`ZSTD_decompressStream`) of one or more concatenated frames.
public final class ZstdDecoder: StreamCodec {
    private let context: OpaquePointer
    /// Input bytes consumed so far, to say where corrupt data starts.
    private var inputOffset = 0
    /// Some input arrived that belongs to a frame not yet fully decoded and flushed.
    private var frameOpen = false
    private var framesDecoded = 0

    public init() throws {
        guard let context = ZSTD_createDCtx() else {
            throw CompressionError(codec: "zstd", kind: .library, message: "cannot allocate a decompression context")
        }
        self.context = context
    }

    deinit { ZSTD_freeDCtx(context) }

    public var method: CompressionMethod { .zstd }
    public var preferredOutputSize: Int { ZSTD_DStreamOutSize() }

    /// Bytes of memory the decompression context holds now (window and buffers).
    public var memoryUsage: Int { ZSTD_sizeof_DCtx(context) }

    public func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws -> CodecStep
    {
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var destination = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let hint = ZSTD_decompressStream(context, &destination, &source)
        if ZSTD_isError(hint) != 0 {
            throw CompressionError(
                codec: "zstd", kind: .corruptInput,
                message:
                    "compressed data is corrupt near input byte \(inputOffset + source.pos): \(zstdErrorName(hint))")
        }
        inputOffset += source.pos
        if source.pos > 0 { frameOpen = true }
        // The library stops at each frame's end and reports 0 once that frame is fully flushed.
        if hint == 0 && frameOpen {
            frameOpen = false
            framesDecoded += 1
        }
        let step = CodecStep(consumed: source.pos, produced: destination.pos, isFinished: false)
        guard finishing, source.pos == input.count, destination.pos == 0 else { return step }
        if frameOpen {
            throw CompressionError(
                codec: "zstd", kind: .truncatedInput,
                message: "input is truncated (stream ended inside a frame after \(inputOffset) bytes)")
        }
        if framesDecoded == 0 {
            throw CompressionError(codec: "zstd", kind: .truncatedInput, message: "input is empty (no zstd frame)")
        }
        return CodecStep(consumed: step.consumed, produced: 0, isFinished: true)
    }
}
