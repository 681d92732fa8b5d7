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
    /// The one loop over `step` that every synchronous use runs: feeds all of `input` (with
    /// `finishing`, then ends the stream), each call writing into the space `output` offers.
    ///
    /// `output` is called once per step with `fill`, which it calls exactly once with free space
    /// (a scratch buffer, or the free end of a buffer it sends on) and which returns the bytes written
    /// there; so output can go straight where it is needed, without a copy.
    public func pump(
        _ input: UnsafeRawBufferPointer, finishing: Bool,
        output: (_ fill: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Void
    ) throws {
        var rest = input
        var stalled = 0
        while true {
            var step = CodecStep(consumed: 0, produced: 0, isFinished: false)
            var room = 0
            let source = rest
            try output { space in
                room = space.count
                step = try self.step(source, into: space, finishing: finishing)
                return step.produced
            }
            rest = UnsafeRawBufferPointer(rebasing: rest[step.consumed...])
            // Without finishing, a full output may mean the library holds more: drain it so nothing piles up inside.
            if finishing ? step.isFinished : (rest.isEmpty && step.produced < room) { return }
            stalled = step.consumed == 0 && step.produced == 0 ? stalled + 1 : 0
            try checkProgress(stalled)
        }
    }

    public func process(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try pumpThroughScratch(input, finishing: false, into: output)
    }

    public func finish(into output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try pumpThroughScratch(UnsafeRawBufferPointer(start: nil, count: 0), finishing: true, into: output)
    }

    /// `pump` into one scratch buffer of the preferred size, handing each step's output to `output`.
    private func pumpThroughScratch(
        _ input: UnsafeRawBufferPointer, finishing: Bool, into output: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: preferredOutputSize, alignment: 16)
        defer { scratch.deallocate() }
        try pump(input, finishing: finishing) { fill in
            let produced = try fill(scratch)
            if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: scratch[..<produced])) }
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
