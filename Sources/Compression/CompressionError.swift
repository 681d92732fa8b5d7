/// A codec failed: which codec, what kind of failure, and the library's own words for it.
public struct CompressionError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The input stopped inside a frame or stream (or held no frame at all).
        case truncatedInput
        /// The input is not valid data for this codec.
        case corruptInput
        /// Decoding would need more memory than the codec was allowed.
        case memoryLimit
        /// A compression level, preset or worker count the library rejected.
        case invalidParameter
        /// A compression method Capstan recognises but cannot run, or does not know.
        case unsupportedMethod
        /// Any other failure reported by the library (out of memory, internal error).
        case library
    }

    /// `zstd`, `xz`, or the method name that was asked for.
    public var codec: String
    public var kind: Kind
    public var message: String

    public init(codec: String, kind: Kind, message: String) {
        self.codec = codec
        self.kind = kind
        self.message = message
    }

    public var description: String { "\(codec): \(message)" }
}
