#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a path could not be serialised, naming the file that caused it.
public struct NarWriteError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        /// A system call failed; `operation` is its name, `errno` the error it returned.
        case system(operation: String, errno: Int32)
        /// The file is neither a regular file, a directory nor a symlink (a socket, device, fifo…).
        case unsupportedFileType(mode: UInt32)
        /// The file became shorter or longer while it was being read.
        case fileChangedSize(expected: UInt64, observed: String)
        /// A name or symlink target is longer than the format allows to be read back.
        case tooLong(what: String, length: Int)
    }

    public var path: String
    public var reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .system(let operation, let code):
            return "cannot archive '\(path)': \(operation) failed: \(String(cString: strerror(code)))"
        case .unsupportedFileType(let mode):
            let octal = String(mode & 0o170000, radix: 8)
            return "cannot archive '\(path)': file type \(octal) is not a regular file, directory or symlink; "
                + "NAR can only hold those, remove or exclude it"
        case .fileChangedSize(let expected, let observed):
            return "cannot archive '\(path)': the file changed while it was read (size was \(expected) bytes, "
                + "then \(observed)); stop whatever writes to it and try again"
        case .tooLong(let what, let length):
            return "cannot archive '\(path)': \(what) of \(length) bytes is longer than a NAR may hold"
        }
    }
}
