#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failure to read the archive itself (as opposed to its contents being invalid).
public struct NarInputError: Error, CustomStringConvertible, Sendable {
    public var errno: Int32
    public var description: String { "cannot read the NAR: \(String(cString: strerror(errno)))" }
}

extension NarParser {
    /// Feeds everything readable from `fileDescriptor` (a file, pipe or stdin) and then `finish()`es.
    public mutating func parse(fileDescriptor: Int32, chunkSize: Int = NarWriter.defaultChunkSize) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(chunkSize, 4096), alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let count = read(fileDescriptor, buffer.baseAddress, buffer.count)
            if count < 0 {
                if errno == EINTR { continue }
                throw NarInputError(errno: errno)
            }
            if count == 0 { break }
            try feed(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
        }
        try finish()
    }
}
