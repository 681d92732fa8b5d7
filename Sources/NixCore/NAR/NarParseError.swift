/// Why a byte stream is not a valid NAR: the problem, the byte offset where it was found and the entry involved.
public struct NarParseError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Problem: Sendable, Equatable {
        /// The stream does not start with the `nix-archive-1` token.
        case badMagic
        /// A token other than the ones the grammar allows at this point.
        case unexpectedToken(expected: String, found: String)
        /// An entry name that is not greater than the one before it.
        case unsortedEntries(previous: String, name: String)
        case duplicateEntry(name: String)
        /// An entry name that is empty, `.`, `..` or contains `/` or NUL.
        case invalidName(name: String, reason: String)
        case invalidSymlinkTarget(reason: String)
        case nonZeroPadding
        /// A token length beyond the limit for what it encodes; nothing is allocated for it.
        case tokenTooLong(what: String, length: UInt64, limit: Int)
        /// File contents declared longer than any NAR can be: its size would pass 2^64 bytes.
        case contentsTooLong(length: UInt64)
        case tooDeep(limit: Int)
        /// The input ended before the root object was complete.
        case truncated(expected: String)
        /// Bytes follow the complete root object.
        case trailingData
    }

    public var problem: Problem
    /// Offset in the archive of the token (or byte) where the problem was found.
    public var offset: UInt64
    /// The entry being read when the problem was found.
    public var path: NarPath

    public init(_ problem: Problem, offset: UInt64, path: NarPath) {
        self.problem = problem
        self.offset = offset
        self.path = path
    }

    public var message: String {
        switch problem {
        case .badMagic:
            "not a NAR: it does not start with 'nix-archive-1'"
        case .unexpectedToken(let expected, let found):
            "unexpected token \(found) where \(expected) was expected"
        case .unsortedEntries(let previous, let name):
            "directory entries are not sorted: '\(name)' comes after '\(previous)'"
        case .duplicateEntry(let name):
            "duplicate directory entry '\(name)'"
        case .invalidName(let name, let reason):
            "invalid entry name '\(name)': \(reason)"
        case .invalidSymlinkTarget(let reason):
            "invalid symlink target: \(reason)"
        case .nonZeroPadding:
            "non-zero padding after a token"
        case .tokenTooLong(let what, let length, let limit):
            "\(what) of \(length) bytes is longer than the limit of \(limit) bytes"
        case .contentsTooLong(let length):
            "file contents of \(length) bytes cannot fit in a NAR, whose size is a 64-bit number"
        case .tooDeep(let limit):
            "entries nested deeper than the limit of \(limit) levels"
        case .truncated(let expected):
            "truncated NAR: input ended where \(expected) was expected"
        case .trailingData:
            "trailing data after the end of the archive"
        }
    }

    public var description: String {
        "invalid NAR at byte \(offset), entry '\(path)': \(message); "
            + "the archive is corrupt or was not made by Nix (re-create it with 'nix-store --dump')"
    }
}
