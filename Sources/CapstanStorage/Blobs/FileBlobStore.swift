import Foundation
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Blobs as files under one directory, written through a temp file and renamed, so a reader sees
/// either no blob or a complete one.
///
/// Layout under `root`: every `BlobKey` at its relative path (`nar/…`, `staging/…`, `multipart/…`),
/// and `tmp/<owner>/` for writes in flight. Replicas sharing the directory have owners of their own:
/// at start a store empties its own temp directory (only a crash of its own process can have left
/// files there) and removes other owners' temp files only once no writer can still be writing them.
public struct FileBlobStore: BlobStore {
    public let root: String
    /// This store's writes in flight.
    public let temporaryDirectory: String
    /// Temp files untouched for longer than this are leftovers of a crash.
    public static let abandonedAfter: TimeInterval = 3600
    /// Chunks of downloads and reads.
    static let chunkSize = 1 << 20

    /// Creates the directories and removes what interrupted writes left in `tmp/`. `owner` names this
    /// writer among the replicas that share the directory (host name and port for a server).
    public init(root: String, owner: String = FileBlobStore.defaultOwner, now: Date = Date()) throws(BlobStoreError) {
        try BlobKey.validate(owner)
        self.root = root
        self.temporaryDirectory = root + "/tmp/" + owner
        for directory in [
            root, root + "/nar", root + "/tmp", temporaryDirectory, root + "/staging", root + "/multipart",
        ] {
            try Self.makeDirectory(directory)
        }
        try removeTemporaryLeftovers(owner: owner, olderThan: now.addingTimeInterval(-Self.abandonedAfter))
    }

    public static var defaultOwner: String {
        ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_")
    }

    public func makeWriter() throws -> any BlobWriter {
        try FileBlobWriter(
            temporaryPath: temporaryDirectory + "/" + UUID().uuidString.lowercased() + ".part", store: self)
    }

    /// Where a key's blob lives (whether or not it exists yet).
    public func path(of key: BlobKey) throws(BlobStoreError) -> String {
        root + "/" + (try key.relativePath())
    }

    public func localFile(of key: BlobKey) -> String? {
        guard let path = try? path(of: key), Self.regularFileSize(path) != nil else { return nil }
        return path
    }

    public func size(of key: BlobKey) throws -> Int64? {
        let path = try path(of: key)
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw BlobStoreError.system(operation: "stat", path: path, errno: errno)
        }
        return (info.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG) ? Int64(info.st_size) : nil
    }

    public func read(_ key: BlobKey, range: Range<Int64>?) throws -> BlobBytes? {
        let path = try path(of: key)
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw BlobStoreError.system(operation: "open", path: path, errno: errno)
        }
        let reader = FileChunkReader(descriptor: descriptor, path: path, range: range, chunkSize: Self.chunkSize)
        return BlobBytes(unfolding: { try reader.next() })
    }

    @discardableResult
    public func delete(_ key: BlobKey) throws -> Bool {
        let path = try path(of: key)
        guard unlink(path) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return false }
            throw BlobStoreError.system(operation: "unlink", path: path, errno: errno)
        }
        // A multipart upload's directory goes with its last file.
        if case .part = key { rmdir((path as NSString).deletingLastPathComponent) }
        if case .upload = key { rmdir((path as NSString).deletingLastPathComponent) }
        return true
    }

    public func list(_ prefix: BlobPrefix) throws -> [BlobEntry] {
        switch prefix {
        case .nars:
            return try entries(in: root + "/nar") { .nar($0) }
        case .staged:
            return try Self.names(in: root + "/staging").flatMap { cacheID in
                try entries(in: root + "/staging/" + cacheID) { .staged(cacheID: cacheID, fileName: $0) }
            }
        case .uploads:
            return try Self.names(in: root + "/multipart").flatMap { uploadID in
                try entries(in: root + "/multipart/" + uploadID) {
                    $0 == "upload.json" ? .upload(uploadID: uploadID) : nil
                }
            }
        case .parts(let uploadID):
            try BlobKey.validate(uploadID)
            return try entries(in: root + "/multipart/" + uploadID) { name in
                guard name.hasPrefix("part-"), let number = Int(name.dropFirst(5)) else { return nil }
                return .part(uploadID: uploadID, number: number)
            }
        }
    }

    // MARK: Helpers shared with FileBlobWriter

    /// Moves a finished temp file to its key's path, durably: creates the key's directory when
    /// needed and syncs it after the rename.
    func install(_ temporaryPath: String, as key: BlobKey) throws(BlobStoreError) {
        let destination = try path(of: key)
        let directory = (destination as NSString).deletingLastPathComponent
        try Self.makeDirectory(directory)
        guard systemRename(temporaryPath, destination) == 0 else {
            throw .system(operation: "rename to \(destination)", path: temporaryPath, errno: errno)
        }
        try Self.syncDirectory(directory)
    }

    /// Makes a rename inside `directory` survive a power loss.
    static func syncDirectory(_ directory: String) throws(BlobStoreError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(operation: "open", path: directory, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system(operation: "fsync", path: directory, errno: errno) }
    }

    static func makeDirectory(_ path: String) throws(BlobStoreError) {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        throw .system(operation: "mkdir", path: path, errno: errno)
    }

    static func regularFileSize(_ path: String) -> Int64? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG) else { return nil }
        return Int64(info.st_size)
    }

    private static func names(in directory: String) throws(BlobStoreError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            if !FileManager.default.fileExists(atPath: directory) { return [] }
            throw .system(operation: "list", path: directory, errno: EIO)
        }
    }

    private func entries(in directory: String, key: (String) -> BlobKey?) throws -> [BlobEntry] {
        try Self.names(in: directory).compactMap { name in
            guard let blobKey = key(name) else { return nil }
            var info = stat()
            guard stat(directory + "/" + name, &info) == 0, (info.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG) else {
                return nil
            }
            return BlobEntry(
                key: blobKey, size: Int64(info.st_size),
                modified: Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec)))
        }
    }

    private func removeTemporaryLeftovers(owner: String, olderThan cutoff: Date) throws(BlobStoreError) {
        for directory in try Self.names(in: root + "/tmp") {
            let path = root + "/tmp/" + directory
            for name in try Self.names(in: path) {
                let file = path + "/" + name
                var info = stat()
                guard stat(file, &info) == 0 else { continue }
                guard directory == owner || TimeInterval(info.st_mtim.tv_sec) < cutoff.timeIntervalSince1970 else {
                    continue
                }
                if unlink(file) != 0 && errno != ENOENT { throw .system(operation: "unlink", path: file, errno: errno) }
            }
        }
    }
}

/// Reads one open file in chunks, from a start offset to an end; closes it at the end or when dropped.
final class FileChunkReader: @unchecked Sendable {
    private var descriptor: Int32
    private let path: String
    private var offset: Int64
    private let end: Int64?
    private let chunkSize: Int

    init(descriptor: Int32, path: String, range: Range<Int64>?, chunkSize: Int) {
        self.descriptor = descriptor
        self.path = path
        self.offset = range?.lowerBound ?? 0
        self.end = range?.upperBound
        self.chunkSize = chunkSize
    }

    func next() throws -> ByteBuffer? {
        guard descriptor >= 0 else { return nil }
        let wanted = end.map { Int(min(Int64(chunkSize), $0 - offset)) } ?? chunkSize
        guard wanted > 0 else {
            finish()
            return nil
        }
        var buffer = ByteBufferAllocator().buffer(capacity: wanted)
        let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { raw in
            while true {
                let result = pread(descriptor, raw.baseAddress, wanted, off_t(offset))
                if result < 0 && errno == EINTR { continue }
                if result < 0 { throw BlobStoreError.system(operation: "read", path: path, errno: errno) }
                return result
            }
        }
        guard count > 0 else {
            finish()
            return nil
        }
        offset += Int64(count)
        return buffer
    }

    private func finish() {
        if descriptor >= 0 { close(descriptor) }
        descriptor = -1
    }

    deinit { finish() }
}

private func systemRename(_ source: String, _ destination: String) -> Int32 {
    #if canImport(Glibc)
        Glibc.rename(source, destination)
    #else
        Darwin.rename(source, destination)
    #endif
}
