#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failure to read a file being hashed.
public struct FileHashError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var errno: Int32
    public var description: String { "cannot hash '\(path)': \(String(cString: strerror(errno)))" }
}

extension NixHasher {
    /// The flat hash of a file's contents (what `nix hash file` prints), read in large chunks.
    public static func hash(
        fileAtPath path: String, algorithm: HashAlgorithm = .sha256, chunkSize: Int = 1 << 20
    ) throws -> NixHash {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileHashError(path: path, errno: errno) }
        defer { close(fd) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkSize, 4096), alignment: 16)
        defer { buffer.deallocate() }
        var hasher = NixHasher(algorithm)
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw FileHashError(path: path, errno: errno)
            }
            if count == 0 { break }
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        return hasher.finalize()
    }
}
