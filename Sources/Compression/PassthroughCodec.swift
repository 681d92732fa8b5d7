/// The codec for `Compression: none`: output is the input, handed on without a copy.
public final class PassthroughCodec: StreamCodec {
    public init() {}

    public var method: CompressionMethod { .none }
    public var preferredOutputSize: Int { 64 * 1024 }

    public func step(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, finishing: Bool)
        -> CodecStep
    {
        let count = min(input.count, output.count)
        if count > 0 { output.copyMemory(from: UnsafeRawBufferPointer(rebasing: input[..<count])) }
        return CodecStep(consumed: count, produced: count, isFinished: finishing && count == input.count)
    }

    public func process(_ input: UnsafeRawBufferPointer, into output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if !input.isEmpty { try output(input) }
    }

    public func finish(into output: (UnsafeRawBufferPointer) throws -> Void) {}
}
