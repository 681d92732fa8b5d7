import CZstd

/// Streaming zstd compression (`ZSTD_compressStream2`), writing one frame with a content checksum
/// like the `zstd` command does.
public final class ZstdEncoder: StreamCodec {
    private let context: OpaquePointer

    /// The level zstd itself defaults to: fast, and a good ratio for NARs.
    public static let defaultLevel: Int32 = 3

    /// - Parameters:
    ///   - level: `ZSTD_minCLevel()...ZSTD_maxCLevel()` (negative levels are the fast modes).
    ///   - workers: threads compressing in the background; 0 compresses on the calling thread.
    public init(level: Int32 = ZstdEncoder.defaultLevel, workers: Int32 = 0) throws {
        let levels = ZSTD_minCLevel()...ZSTD_maxCLevel()
        guard levels.contains(level) else {
            throw CompressionError(
                codec: "zstd", kind: .invalidParameter,
                message: "compression level \(level) is outside \(levels.lowerBound)...\(levels.upperBound)")
        }
        guard workers >= 0 else {
            throw CompressionError(
                codec: "zstd", kind: .invalidParameter, message: "worker count \(workers) is negative")
        }
        guard let context = ZSTD_createCCtx() else {
            throw CompressionError(codec: "zstd", kind: .library, message: "cannot allocate a compression context")
        }
        self.context = context
        try set(ZSTD_c_compressionLevel, level, "compression level \(level)")
        try set(ZSTD_c_checksumFlag, 1, "content checksum")
        if workers > 0 { try set(ZSTD_c_nbWorkers, workers, "\(workers) workers (is libzstd built multithreaded?)") }
    }

    deinit { ZSTD_freeCCtx(context) }

    public var method: CompressionMethod { .zstd }
    public var preferredOutputSize: Int { ZSTD_CStreamOutSize() }

    /// Bytes of memory the compression context holds now (buffers, tables, worker state).
    public var memoryUsage: Int { ZSTD_sizeof_CCtx(context) }

    public func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        throws -> CodecStep
    {
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var destination = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let remaining = ZSTD_compressStream2(
            context, &destination, &source, finishing ? ZSTD_e_end : ZSTD_e_continue)
        if ZSTD_isError(remaining) != 0 {
            throw CompressionError(
                codec: "zstd", kind: .library, message: "compression failed: \(zstdErrorName(remaining))")
        }
        // With ZSTD_e_end the return value is what is still to flush; 0 means the frame is closed.
        return CodecStep(
            consumed: source.pos, produced: destination.pos,
            isFinished: finishing && remaining == 0 && source.pos == input.count)
    }

    private func set(_ parameter: ZSTD_cParameter, _ value: Int32, _ what: String) throws {
        let result = ZSTD_CCtx_setParameter(context, parameter, value)
        if ZSTD_isError(result) != 0 {
            throw CompressionError(
                codec: "zstd", kind: .invalidParameter,
                message: "cannot set \(what): \(zstdErrorName(result))")
        }
    }
}

func zstdErrorName(_ code: Int) -> String {
    String(cString: ZSTD_getErrorName(code))
}
