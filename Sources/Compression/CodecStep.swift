/// What one call into a codec's library did.
public struct CodecStep: Sendable, Equatable {
    /// Bytes taken from the front of the input.
    public var consumed: Int
    /// Bytes written to the front of the output buffer.
    public var produced: Int
    /// Only when finishing: every byte of output has been produced and the stream is complete.
    public var isFinished: Bool

    public init(consumed: Int, produced: Int, isFinished: Bool) {
        self.consumed = consumed
        self.produced = produced
        self.isFinished = isFinished
    }
}
