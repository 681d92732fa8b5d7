/// A line a command printed (without its newline), as the runner read it.
public struct OutputLine: Sendable, Equatable {
    public enum Stream: Sendable, Equatable {
        case standardOutput
        case standardError
    }

    public var stream: Stream
    public var text: String

    public init(stream: Stream, text: String) {
        self.stream = stream
        self.text = text
    }
}
