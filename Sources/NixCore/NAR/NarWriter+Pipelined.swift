import Dispatch
import Foundation

extension NarWriter {
    /// Buffers in flight between the reading thread and the consumer of a pipelined dump.
    public static let pipelineDepth = 4

    /// Like `dump`, but reads the tree on a thread of its own while `sink` runs on the calling
    /// thread, `depth` buffers of `chunkSize` bytes apart: reading (system calls, the kernel's
    /// copies) and the sink's work (hashing, compressing, writing) overlap on two cores.
    @discardableResult
    public func pipelinedDump(path: String, depth: Int = NarWriter.pipelineDepth, into sink: Sink) throws -> UInt64 {
        let ring = NarChunkRing(count: max(2, depth), capacity: chunkSize)
        let readerDone = DispatchSemaphore(value: 0)
        let reader = Thread {
            defer { readerDone.signal() }
            Self.fill(ring, from: path)
        }
        reader.name = "nar-reader"
        reader.start()
        // The reader uses the ring until it signals; the ring must outlive it.
        defer { withExtendedLifetime(ring) { readerDone.wait() } }
        var size: UInt64 = 0
        do {
            while try ring.consume({ chunk in
                try sink(chunk)
                size &+= UInt64(chunk.count)
            }) {}
        } catch {
            ring.abandon()
            throw error
        }
        return size
    }

    /// The reading thread: serialises `path` into the ring's buffers and ends with `.end` or the failure.
    private static func fill(_ ring: NarChunkRing, from path: String) {
        let readAhead = NarReadAhead()
        defer { readAhead.stop() }
        var dumper: NarDumper
        do {
            dumper = try NarDumper(ring: ring, path: path, readAhead: readAhead)
        } catch {
            return  // abandoned before the first buffer: the consumer is gone
        }
        do {
            try dumper.dumpRoot { _ in }
            try dumper.flush { _ in }
            ring.publish(.end)
        } catch is NarChunkRing.Abandoned {
            // The consumer stopped; it reads nothing more, and no buffer is held.
        } catch {
            ring.publish(.failure(error))
        }
    }
}
