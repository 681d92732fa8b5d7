import Hummingbird
import NIOCore
import _NIOFileSystem

/// Response bodies streamed one chunk at a time, each handed to the connection's event loop before
/// the next is read. NIO's async writer learns that a socket is full only once that event loop has
/// run; on a busy server the chunks read meanwhile queued up without bound (16 concurrent downloads
/// of a 64 MiB NAR held 200–390 MB). Waiting for the loop keeps a download at about its read-ahead.
enum PacedBody {
    /// Bytes `range` of a file, read `chunkLength` at a time (the reader keeps a few chunks ahead):
    /// the fallback of `FileRegionBody` on connections without a `FileRegionSender`.
    static func file(_ path: String, range: ClosedRange<Int>, chunkLength: Int, on eventLoop: any EventLoop)
        -> ResponseBody
    {
        ResponseBody(contentLength: range.count) { writer in
            try await FileSystem.shared.withFileHandle(forReadingAt: FilePath(path)) { handle in
                let chunks = handle.readChunks(
                    in: Int64(range.lowerBound)...Int64(range.upperBound), chunkLength: .bytes(Int64(chunkLength)))
                for try await chunk in chunks {
                    try await writer.write(chunk)
                    try await eventLoop.submit {}.get()
                }
            }
            try await writer.finish(nil)
        }
    }

    /// Bytes from a stream (an object store, a decoder), pulled as the client takes them.
    static func stream<Bytes: AsyncSequence & Sendable>(
        _ bytes: Bytes, contentLength: Int, on eventLoop: any EventLoop
    ) -> ResponseBody where Bytes.Element == ByteBuffer {
        ResponseBody(contentLength: contentLength) { writer in
            for try await buffer in bytes {
                try await writer.write(buffer)
                try await eventLoop.submit {}.get()
            }
            try await writer.finish(nil)
        }
    }
}
