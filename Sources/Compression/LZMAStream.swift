import CLZMA

/// An `lzma_stream` at a fixed address (liblzma keeps pointers into it between calls), ended on deinit.
final class LZMAStream {
    let pointer: UnsafeMutablePointer<lzma_stream>
    /// Input bytes consumed so far, to say where corrupt data starts.
    private(set) var inputOffset = 0

    init() {
        pointer = .allocate(capacity: 1)
        // All-zero is LZMA_STREAM_INIT.
        pointer.initialize(to: lzma_stream())
    }

    deinit {
        lzma_end(pointer)
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }

    /// One `lzma_code` call; returns the step and the library's return code for the caller to judge.
    func code(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        -> (CodecStep, lzma_ret)
    {
        pointer.pointee.next_in = input.baseAddress?.assumingMemoryBound(to: UInt8.self)
        pointer.pointee.avail_in = input.count
        pointer.pointee.next_out = output.baseAddress?.assumingMemoryBound(to: UInt8.self)
        pointer.pointee.avail_out = output.count
        let result = lzma_code(pointer, finishing ? LZMA_FINISH : LZMA_RUN)
        let consumed = input.count - pointer.pointee.avail_in
        let produced = output.count - pointer.pointee.avail_out
        pointer.pointee.next_in = nil
        pointer.pointee.next_out = nil
        inputOffset += consumed
        return (CodecStep(consumed: consumed, produced: produced, isFinished: result == LZMA_STREAM_END), result)
    }

    var memoryUsage: UInt64 { lzma_memusage(pointer) }
}

/// liblzma's return codes as words, with the constant's name for searching.
func describe(_ result: lzma_ret) -> String {
    switch result {
    case LZMA_MEM_ERROR: "cannot allocate memory (LZMA_MEM_ERROR)"
    case LZMA_MEMLIMIT_ERROR: "memory usage limit reached (LZMA_MEMLIMIT_ERROR)"
    case LZMA_FORMAT_ERROR: "file format not recognized (LZMA_FORMAT_ERROR)"
    case LZMA_OPTIONS_ERROR: "unsupported compression options (LZMA_OPTIONS_ERROR)"
    case LZMA_DATA_ERROR: "compressed data is corrupt (LZMA_DATA_ERROR)"
    case LZMA_BUF_ERROR: "unexpected end of input (LZMA_BUF_ERROR)"
    case LZMA_UNSUPPORTED_CHECK: "unsupported integrity check (LZMA_UNSUPPORTED_CHECK)"
    case LZMA_PROG_ERROR: "programming error (LZMA_PROG_ERROR)"
    default: "lzma_ret \(result.rawValue)"
    }
}
