/// A streaming compressor or decompressor over C library state.
///
/// Input goes in as chunks of any size; output comes out in pieces of at most
/// `preferredOutputSize` bytes, so memory stays bounded whatever the ratio. A codec is single-use
/// (feed, then finish) and not `Sendable`: one request or one pipe owns it inside one task.
public protocol StreamCodec: AnyObject {
    /// The method this codec reads or writes.
    var method: CompressionMethod { get }

    /// The output buffer size the library recommends; each piece of output is at most this large.
    var preferredOutputSize: Int { get }

    /// One call into the library: consumes a prefix of `input` and fills a prefix of `output`.
    ///
    /// With `finishing`, no input follows this call's; call again (with the unconsumed rest, usually
    /// nothing) until the step reports `isFinished`.
    func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool) throws
        -> CodecStep

    /// Feeds all of `input`, handing each piece of output to `output` before producing the next.
    ///
    /// The buffer passed to `output` is valid only during that call.
    func process(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) throws -> Void) throws

    /// Ends the stream: writes what the codec still holds, and for decoders checks the input was complete.
    func finish(into output: (UnsafeRawBufferPointer) throws -> Void) throws
}

extension StreamCodec {
    public func process(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) throws -> Void) throws {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: preferredOutputSize, alignment: 16)
        defer { scratch.deallocate() }
        var rest = input
        var stalled = 0
        while true {
            let step = try step(rest, into: scratch, finishing: false)
            rest = UnsafeRawBufferPointer(rebasing: rest[step.consumed...])
            if step.produced > 0 { try output(UnsafeRawBufferPointer(rebasing: scratch[..<step.produced])) }
            // A full output buffer may mean the library holds more; drain it so nothing piles up inside.
            let outputFull = step.produced == scratch.count
            if rest.isEmpty && !outputFull { return }
            stalled = step.consumed == 0 && step.produced == 0 ? stalled + 1 : 0
            try checkProgress(stalled)
        }
    }

    public func finish(into output: (UnsafeRawBufferPointer) throws -> Void) throws {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: preferredOutputSize, alignment: 16)
        defer { scratch.deallocate() }
        var stalled = 0
        while true {
            let step = try step(UnsafeRawBufferPointer(start: nil, count: 0), into: scratch, finishing: true)
            if step.produced > 0 { try output(UnsafeRawBufferPointer(rebasing: scratch[..<step.produced])) }
            if step.isFinished { return }
            stalled = step.produced == 0 ? stalled + 1 : 0
            try checkProgress(stalled)
        }
    }

    /// Runs the whole of `input` through the codec and finishes it; for small inputs and tests.
    public func transform(_ input: some Collection<UInt8>) throws -> [UInt8] {
        var result: [UInt8] = []
        let append: (UnsafeRawBufferPointer) -> Void = { result.append(contentsOf: $0) }
        let done: Void? = try input.withContiguousStorageIfAvailable {
            try process(UnsafeRawBufferPointer($0), into: append)
        }
        if done == nil { try Array(input).withUnsafeBytes { try process($0, into: append) } }
        try finish(into: append)
        return result
    }

    /// Libraries may take one call without progress (e.g. to notice the end); more means a stuck loop.
    func checkProgress(_ stalledCalls: Int) throws {
        if stalledCalls > 2 {
            throw CompressionError(
                codec: method.narInfoName, kind: .library,
                message: "the library made no progress on \(stalledCalls) calls in a row")
        }
    }
}
