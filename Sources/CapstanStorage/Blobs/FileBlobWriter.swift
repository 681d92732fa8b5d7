import Foundation
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One blob being written to a private temp file, which becomes visible only through `commit(as:)`.
///
/// Not thread-safe: one task writes it. A writer that is neither committed nor discarded removes
/// its temp file when it goes away.
public final class FileBlobWriter: BlobWriter {
    public let temporaryPath: String
    public private(set) var bytesWritten: Int64 = 0
    private let store: FileBlobStore
    private var descriptor: Int32

    init(temporaryPath: String, store: FileBlobStore) throws(BlobStoreError) {
        self.temporaryPath = temporaryPath
        self.store = store
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .system(operation: "create", path: temporaryPath, errno: errno) }
        self.descriptor = descriptor
    }

    /// Appends the bytes, looping until the kernel took all of them (large chunks go straight to write(2)).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(BlobStoreError) {
        guard descriptor >= 0 else { throw .writerClosed(path: temporaryPath) }
        guard var pointer = bytes.baseAddress else { return }
        var remaining = bytes.count
        while remaining > 0 {
            let written = systemWrite(descriptor, pointer, remaining)
            if written < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "write", path: temporaryPath, errno: errno)
            }
            pointer += written
            remaining -= written
            bytesWritten += Int64(written)
        }
    }

    public func write(_ buffer: ByteBuffer) throws {
        let result = buffer.withUnsafeReadableBytes { raw in
            Result { () throws(BlobStoreError) in try write(raw) }
        }
        try result.get()
    }

    /// Flushes the file to disk, renames it to the key's path and syncs the directory, on a thread of
    /// its own: an fsync of a large blob takes long, and on the few threads that run the server's tasks
    /// (or of a dispatch queue, as wide as the cores on Linux) it would hold up everything else.
    public func commit(as key: BlobKey) async throws {
        guard descriptor >= 0 else { throw BlobStoreError.writerClosed(path: temporaryPath) }
        // From here the file is the installing thread's: it closes it, and removes it if anything fails.
        let descriptor = self.descriptor
        self.descriptor = -1
        let temporaryPath = temporaryPath
        let store = store
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread.detachNewThread {
                continuation.resume(
                    with: Result {
                        try Self.install(descriptor: descriptor, temporaryPath: temporaryPath, in: store, as: key)
                    })
            }
        }
    }

    /// Flushes and closes the temp file, then renames it into place; on failure the temp file is gone.
    private static func install(descriptor: Int32, temporaryPath: String, in store: FileBlobStore, as key: BlobKey)
        throws
    {
        guard fsync(descriptor) == 0 else {
            let code = errno
            close(descriptor)
            unlink(temporaryPath)
            throw BlobStoreError.system(operation: "fsync", path: temporaryPath, errno: code)
        }
        guard close(descriptor) == 0 else {
            let code = errno
            unlink(temporaryPath)
            throw BlobStoreError.system(operation: "close", path: temporaryPath, errno: code)
        }
        do {
            try store.install(temporaryPath, as: key)
        } catch {
            unlink(temporaryPath)
            throw error
        }
    }

    public func discard() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
        unlink(temporaryPath)
    }

    deinit {
        discard()
    }
}

private func systemWrite(_ descriptor: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
        Glibc.write(descriptor, pointer, count)
    #else
        Darwin.write(descriptor, pointer, count)
    #endif
}
