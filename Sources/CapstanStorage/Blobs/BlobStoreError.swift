#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why the blob store refused or failed an operation, with the name or file involved.
public enum BlobStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A blob or staging name that could escape its directory or is otherwise unusable.
    case invalidName(String, reason: String)
    /// A system call failed; `operation` is the call, `path` the file it was applied to.
    case system(operation: String, path: String, errno: Int32)
    /// The writer was used after `commit` or `discard`.
    case writerClosed(path: String)
    /// A blob store URL that cannot be used.
    case invalidLocation(String, reason: String)
    /// An object store refused or failed a request; `status` is its HTTP status when it answered.
    case objectStore(operation: String, status: Int?, reason: String)

    public var description: String {
        switch self {
        case .invalidName(let name, let reason):
            return "blob name '\(name)' is not valid: \(reason)"
        case .system(let operation, let path, let code):
            return "\(operation) \(path) failed: \(String(cString: strerror(code))) (errno \(code))"
        case .writerClosed(let path):
            return "blob writer for \(path) was already committed or discarded"
        case .invalidLocation(let location, let reason):
            return "blob store '\(location)': \(reason)"
        case .objectStore(let operation, let status, let reason):
            return "object store: \(operation) failed" + (status.map { " (HTTP \($0))" } ?? "") + ": \(reason)"
        }
    }
}
