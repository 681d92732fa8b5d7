import Hummingbird
import NIOCore
import _NIOFileSystem

/// Response bodies sent from a file by the connection's `FileRegionSender` (sendfile): no copy
/// through user space, no hop per chunk, and the socket's own back-pressure keeps memory flat.
enum FileRegionBody {
    /// Bytes `range` of the file at `path`. The body ends once the kernel took the last byte, so
    /// the connection counts as busy (idle timeout, connection cap) for the whole download.
    /// `fallback` sends the same bytes where the connection has no sender.
    static func file(_ path: String, range: ClosedRange<Int>, channel: any Channel, fallback: ResponseBody)
        -> ResponseBody
    {
        ResponseBody(contentLength: range.count) { writer in
            // Opened on the file system's threads, then owned by NIO's handle, which sendfile needs.
            let descriptor = try await FileSystem.shared.openFile(forReadingAt: FilePath(path))
                .detachUnsafeFileDescriptor()
            let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor.rawValue)
            let region = FileRegion(fileHandle: handle, readerIndex: range.lowerBound, endIndex: range.upperBound + 1)
            let handed: EventLoopFuture<Void>?
            do {
                handed = try await channel.eventLoop.submit { () -> EventLoopFuture<Void>? in
                    guard let sender = try? channel.pipeline.syncOperations.handler(type: FileRegionSender.self)
                    else { return nil }
                    let sent = channel.eventLoop.makePromise(of: Void.self)
                    sender.send(region, promise: sent)
                    return sent.futureResult
                }.get()
            } catch {
                // The loop is shutting down and never ran the hand-over: the handle is still ours.
                try? handle.close()
                throw error
            }
            guard let handed else {
                try handle.close()
                try await fallback.write(writer)
                return
            }
            try await handed.get()
            try await writer.finish(nil)
        }
    }
}
