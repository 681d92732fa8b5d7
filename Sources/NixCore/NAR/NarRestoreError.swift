#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why an archive could not be unpacked, naming the file system path involved.
public struct NarRestoreError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        case targetExists
        case system(operation: String, errno: Int32)
    }

    public var path: String
    public var reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .targetExists:
            "cannot restore into '\(path)': it already exists; give a path that does not exist yet"
        case .system(let operation, let code):
            "cannot restore '\(path)': \(operation) failed: \(String(cString: strerror(code)))"
        }
    }
}
