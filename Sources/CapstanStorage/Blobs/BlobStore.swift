import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Content-addressed files (NARs) under one directory, written through a temp file and renamed,
/// so a reader sees either no blob or a complete one.
///
/// Layout under `root`: `nar/<name>` holds committed blobs, `tmp/` holds writes in flight (emptied
/// at start: after a crash only temp files can be incomplete), `staging/<cacheID>/<fileName>` holds
/// uploads of a two-step push until the server has checked them.
public struct BlobStore: Sendable {
    public let root: String
    public let blobDirectory: String
    public let temporaryDirectory: String
    public let stagingDirectory: String

    /// Creates the directories and removes what an interrupted write left in `tmp/`.
    public init(root: String) throws(BlobStoreError) {
        self.root = root
        self.blobDirectory = root + "/nar"
        self.temporaryDirectory = root + "/tmp"
        self.stagingDirectory = root + "/staging"
        for directory in [root, blobDirectory, temporaryDirectory, stagingDirectory] {
            try Self.makeDirectory(directory)
        }
        try removeTemporaryLeftovers()
    }

    /// Starts a new blob; bytes go to a private temp file until `commit(as:)`.
    public func makeWriter() throws(BlobStoreError) -> BlobWriter {
        let path = temporaryDirectory + "/" + UUID().uuidString.lowercased() + ".part"
        return try BlobWriter(temporaryPath: path, store: self)
    }

    /// Where the committed blob `name` lives (whether or not it exists yet).
    public func path(for name: String) throws(BlobStoreError) -> String {
        try Self.validate(name)
        return blobDirectory + "/" + name
    }

    public func exists(_ name: String) throws(BlobStoreError) -> Bool {
        let path = try path(for: name)
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & mode_t(S_IFMT)) == mode_t(S_IFREG)
    }

    /// The size in bytes of a committed blob, nil when there is none.
    public func size(_ name: String) throws(BlobStoreError) -> Int64? {
        let path = try path(for: name)
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw .system(operation: "stat", path: path, errno: errno)
        }
        return Int64(info.st_size)
    }

    /// Removes a committed blob; false when it was not there.
    @discardableResult
    public func remove(_ name: String) throws(BlobStoreError) -> Bool {
        let path = try path(for: name)
        guard unlink(path) == 0 else {
            if errno == ENOENT { return false }
            throw .system(operation: "unlink", path: path, errno: errno)
        }
        return true
    }

    // MARK: Staging for two-step uploads

    /// The file a two-step upload of `fileName` into cache `cacheID` is written to; creates its directory.
    public func stagingPath(cacheID: String, fileName: String) throws(BlobStoreError) -> String {
        try Self.validate(cacheID)
        try Self.validate(fileName)
        let directory = stagingDirectory + "/" + cacheID
        try Self.makeDirectory(directory)
        return directory + "/" + fileName
    }

    /// Moves a staged upload into the blob directory under `name`, durably; returns the blob's path.
    @discardableResult
    public func commitStaged(cacheID: String, fileName: String, as name: String) throws(BlobStoreError) -> String {
        let source = try stagingPath(cacheID: cacheID, fileName: fileName)
        let destination = try path(for: name)
        let descriptor = open(source, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(operation: "open", path: source, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system(operation: "fsync", path: source, errno: errno) }
        try Self.rename(source, to: destination)
        try Self.syncDirectory(blobDirectory)
        return destination
    }

    /// Drops a staged upload; false when there was none.
    @discardableResult
    public func removeStaged(cacheID: String, fileName: String) throws(BlobStoreError) -> Bool {
        let path = try stagingPath(cacheID: cacheID, fileName: fileName)
        guard unlink(path) == 0 else {
            if errno == ENOENT { return false }
            throw .system(operation: "unlink", path: path, errno: errno)
        }
        return true
    }

    // MARK: Helpers shared with BlobWriter

    /// One path component: not empty, no '/', no NUL, not '.' or '..'.
    static func validate(_ name: String) throws(BlobStoreError) {
        if name.isEmpty { throw .invalidName(name, reason: "it is empty") }
        if name == "." || name == ".." { throw .invalidName(name, reason: "'.' and '..' are not file names") }
        if name.utf8.contains(UInt8(ascii: "/")) { throw .invalidName(name, reason: "it contains '/'") }
        if name.utf8.contains(0) { throw .invalidName(name, reason: "it contains a NUL byte") }
        if name.utf8.count > 255 { throw .invalidName(name, reason: "it is longer than 255 bytes") }
    }

    static func rename(_ source: String, to destination: String) throws(BlobStoreError) {
        guard systemRename(source, destination) == 0 else {
            throw .system(operation: "rename to \(destination)", path: source, errno: errno)
        }
    }

    /// Makes a rename inside `directory` survive a power loss.
    static func syncDirectory(_ directory: String) throws(BlobStoreError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .system(operation: "open", path: directory, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .system(operation: "fsync", path: directory, errno: errno) }
    }

    private static func makeDirectory(_ path: String) throws(BlobStoreError) {
        if mkdir(path, 0o755) == 0 || errno == EEXIST { return }
        throw .system(operation: "mkdir", path: path, errno: errno)
    }

    private func removeTemporaryLeftovers() throws(BlobStoreError) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: temporaryDirectory)
        } catch {
            throw .system(operation: "list", path: temporaryDirectory, errno: EIO)
        }
        for name in names {
            let path = temporaryDirectory + "/" + name
            if unlink(path) != 0 && errno != ENOENT {
                throw .system(operation: "unlink", path: path, errno: errno)
            }
        }
    }
}

private func systemRename(_ source: String, _ destination: String) -> Int32 {
    #if canImport(Glibc)
        Glibc.rename(source, destination)
    #else
        Darwin.rename(source, destination)
    #endif
}
