#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The NarHash and NarSize of a serialised path.
public struct NarDigest: Sendable, Hashable {
    public var hash: NixHash
    public var size: UInt64

    public init(hash: NixHash, size: UInt64) {
        self.hash = hash
        self.size = size
    }
}

/// Serialises a filesystem path into a NAR, streaming it to a sink in large chunks.
///
/// File contents are read straight into the output buffer, so each chunk costs one `read` and
/// one sink call; memory stays at `chunkSize` whatever the size of the tree.
public struct NarWriter: Sendable {
    public typealias Sink = (UnsafeRawBufferPointer) throws -> Void

    public static let defaultChunkSize = 1 << 20

    /// Largest regular file that a pipelined dump reads on its second reading thread (see `NarReadAhead`).
    public static let readAheadFileLimit = 32 << 10

    /// Size of the reusable buffer and the largest chunk handed to the sink.
    public var chunkSize: Int

    public init(chunkSize: Int = NarWriter.defaultChunkSize) {
        // A chunk must hold the longest name or target token in one piece.
        self.chunkSize = max(chunkSize, 8192)
    }

    /// Writes the NAR of `path` (not following a symlink at `path`) to `sink`; returns its size in bytes.
    @discardableResult
    public func dump(path: String, into sink: Sink) throws -> UInt64 {
        var dumper = NarDumper(capacity: chunkSize, path: path)
        defer { dumper.deallocate() }
        try dumper.dumpRoot(sink)
        try dumper.flush(sink)
        return dumper.written
    }

    /// Hashes the NAR of `path` while streaming it, also handing every chunk to `sink` if one is given.
    ///
    /// The tree is read on a thread of its own while this one hashes (see `pipelinedDump`).
    public func hash(path: String, algorithm: HashAlgorithm = .sha256, alsoInto sink: Sink? = nil) throws -> NarDigest {
        var hasher = NixHasher(algorithm)
        let size = try pipelinedDump(path: path) { chunk in
            hasher.update(chunk)
            try sink?(chunk)
        }
        return NarDigest(hash: hasher.finalize(), size: size)
    }

    @discardableResult
    public static func dump(path: String, chunkSize: Int = defaultChunkSize, into sink: Sink) throws -> UInt64 {
        try NarWriter(chunkSize: chunkSize).dump(path: path, into: sink)
    }

    public static func hash(
        path: String, algorithm: HashAlgorithm = .sha256, chunkSize: Int = defaultChunkSize, alsoInto sink: Sink? = nil
    ) throws -> NarDigest {
        try NarWriter(chunkSize: chunkSize).hash(path: path, algorithm: algorithm, alsoInto: sink)
    }
}

/// One serialisation in progress: the output buffer and the path being visited (for errors).
struct NarDumper {
    /// Longest name or symlink target the parser accepts back.
    static let maximumTokenLength = 4096

    private var buffer: UnsafeMutableRawPointer
    private let capacity: Int
    /// Where full buffers go when another thread consumes them; nil when `flush` calls the sink.
    private let ring: NarChunkRing?
    private var used = 0
    private(set) var written: UInt64 = 0
    /// The path of the entry being visited, kept as bytes so names need no decoding on the hot path.
    private var currentPath: [UInt8]
    private var linkBuffer: [UInt8]
    /// Small files read by a second thread ahead of this one; nil when this thread reads everything.
    private let readAhead: NarReadAhead?
    /// The directory whose entries are being serialised, as `readAhead` knows it.
    private var directory: NarReadAhead.Directory?

    /// An entry of a directory listing: its name with a terminating NUL, and whether the listing says it is a regular file.
    struct DirectoryEntry {
        var name: [UInt8]
        var isRegular: Bool
    }

    init(capacity: Int, path: String) {
        self.capacity = capacity
        buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        ring = nil
        readAhead = nil
        currentPath = Array(path.utf8)
        linkBuffer = [UInt8](repeating: 0, count: Self.maximumTokenLength + 1)
    }

    /// A dumper that fills the ring's buffers in turn instead of calling a sink.
    init(ring: NarChunkRing, path: String, readAhead: NarReadAhead?) throws {
        capacity = ring.capacity
        buffer = try ring.acquire()
        self.ring = ring
        self.readAhead = readAhead
        currentPath = Array(path.utf8)
        linkBuffer = [UInt8](repeating: 0, count: Self.maximumTokenLength + 1)
    }

    func deallocate() { if ring == nil { buffer.deallocate() } }

    private var pathString: String { String(decoding: currentPath, as: UTF8.self) }

    private func failure(_ operation: String, _ code: Int32 = errno) -> NarWriteError {
        NarWriteError(path: pathString, reason: .system(operation: operation, errno: code))
    }

    mutating func flush(_ sink: NarWriter.Sink) throws {
        guard used > 0 else { return }
        if let ring {
            ring.publish(.chunk(used))
            written &+= UInt64(used)
            used = 0
            buffer = try ring.acquire()
            return
        }
        try sink(UnsafeRawBufferPointer(start: buffer, count: used))
        written &+= UInt64(used)
        used = 0
    }

    private mutating func append(_ bytes: UnsafeRawBufferPointer, _ sink: NarWriter.Sink) throws {
        var offset = 0
        while offset < bytes.count {
            if used == capacity { try flush(sink) }
            let n = min(capacity - used, bytes.count - offset)
            (buffer + used).copyMemory(from: bytes.baseAddress! + offset, byteCount: n)
            used += n
            offset += n
        }
    }

    private mutating func append(_ bytes: [UInt8], _ sink: NarWriter.Sink) throws {
        try bytes.withUnsafeBytes { try append($0, sink) }
    }

    private mutating func appendLength(_ length: UInt64, _ sink: NarWriter.Sink) throws {
        if capacity - used < 8 { try flush(sink) }
        (buffer + used).storeBytes(of: length.littleEndian, as: UInt64.self)
        used += 8
    }

    private mutating func appendPadding(_ count: Int, _ sink: NarWriter.Sink) throws {
        guard count > 0 else { return }
        if capacity - used < count { try flush(sink) }
        (buffer + used).initializeMemory(as: UInt8.self, repeating: 0, count: count)
        used += count
    }

    /// A string token of `count` bytes at `bytes`.
    private mutating func appendToken(_ bytes: UnsafeRawBufferPointer, _ sink: NarWriter.Sink) throws {
        try appendLength(UInt64(bytes.count), sink)
        try append(bytes, sink)
        try appendPadding(NarFormat.padding(for: UInt64(bytes.count)), sink)
    }

    mutating func dumpRoot(_ sink: NarWriter.Sink) throws {
        try append(NarFormat.archiveStart, sink)
        let cPath = currentPath + [0]
        try cPath.withUnsafeBytes { raw in
            let name = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
            var status = stat()
            guard fstatat(AT_FDCWD, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure("lstat") }
            try dumpNode(parent: AT_FDCWD, name: name, status: status, sink)
        }
    }

    /// Serialises the entry `name` of directory `parent` whose `lstat` is `status`.
    private mutating func dumpNode(
        parent: Int32, name: UnsafePointer<CChar>, status: stat, _ sink: NarWriter.Sink
    ) throws {
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            let fd = openat(parent, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw failure("open") }
            defer { close(fd) }
            let executable = status.st_mode & S_IXUSR != 0
            try append(executable ? NarFormat.executableStart : NarFormat.regularStart, sink)
            try dumpContents(fd: fd, size: UInt64(status.st_size), sink)
            try append(NarFormat.closeToken, sink)
        case S_IFLNK:
            let length = linkBuffer.withUnsafeMutableBytes { link in
                readlinkat(parent, name, link.baseAddress!.assumingMemoryBound(to: CChar.self), link.count)
            }
            guard length >= 0 else { throw failure("readlink") }
            guard length <= Self.maximumTokenLength else {
                throw NarWriteError(path: pathString, reason: .tooLong(what: "symlink target", length: length))
            }
            try append(NarFormat.symlinkStart, sink)
            try linkBuffer.withUnsafeBytes { try appendToken(UnsafeRawBufferPointer(rebasing: $0[..<length]), sink) }
            try append(NarFormat.closeToken, sink)
        case S_IFDIR:
            let fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw failure("open directory") }
            defer { close(fd) }
            try append(NarFormat.directoryStart, sink)
            try dumpDirectory(fd: fd, sink)
            try append(NarFormat.closeToken, sink)
        default:
            throw NarWriteError(path: pathString, reason: .unsupportedFileType(mode: UInt32(status.st_mode)))
        }
    }

    private mutating func dumpDirectory(fd: Int32, _ sink: NarWriter.Sink) throws {
        let entries = try sortedEntries(of: fd)
        let parentLength = currentPath.count
        defer { currentPath.removeSubrange(parentLength...) }
        let parentDirectory = directory
        directory = readAhead?.enter(fd: fd, entries: entries, parent: parentDirectory)
        // Before the caller closes `fd`: the read-ahead thread may still be opening files in it.
        defer {
            if let readAhead, let directory { readAhead.leave(directory) }
            directory = parentDirectory
        }
        for (index, entry) in entries.enumerated() {
            // `name` carries its terminating NUL, so it is usable as a C string as is.
            let name = entry.name
            let length = name.count - 1
            currentPath.removeSubrange(parentLength...)
            currentPath.append(UInt8(ascii: "/"))
            currentPath.append(contentsOf: name[..<length])
            try name.withUnsafeBufferPointer { bytes in
                let raw = UnsafeRawBufferPointer(bytes)
                try append(NarFormat.entryStart, sink)
                try appendToken(UnsafeRawBufferPointer(rebasing: raw[..<length]), sink)
                try append(NarFormat.nodeKeyword, sink)
                if let readAhead, let directory, let contents = readAhead.take(index, of: directory) {
                    defer { readAhead.release(contents) }
                    try dumpRegular(readAhead.bytes(of: contents), executable: contents.executable, sink)
                } else {
                    let cName = raw.baseAddress!.assumingMemoryBound(to: CChar.self)
                    var status = stat()
                    guard fstatat(fd, cName, &status, AT_SYMLINK_NOFOLLOW) == 0 else { throw failure("lstat") }
                    try dumpNode(parent: fd, name: cName, status: status, sink)
                }
                try append(NarFormat.closeToken, sink)
            }
        }
    }

    /// A regular file whose contents were read ahead.
    private mutating func dumpRegular(_ contents: UnsafeRawBufferPointer, executable: Bool, _ sink: NarWriter.Sink)
        throws
    {
        try append(executable ? NarFormat.executableStart : NarFormat.regularStart, sink)
        try appendToken(contents, sink)
        try append(NarFormat.closeToken, sink)
    }

    /// The directory's entries, names NUL-terminated, in bytewise order (which is the order NAR requires).
    private func sortedEntries(of fd: Int32) throws -> [DirectoryEntry] {
        let listing = dup(fd)
        guard listing >= 0 else { throw failure("dup") }
        guard let dir = fdopendir(listing) else {
            let code = errno
            close(listing)
            throw failure("opendir", code)
        }
        defer { closedir(dir) }
        var entries: [DirectoryEntry] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw failure("readdir") }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: UInt8.self, capacity: 256) { start in
                    Array(
                        UnsafeBufferPointer(
                            start: start, count: strlen(UnsafeRawPointer(start).assumingMemoryBound(to: CChar.self)) + 1
                        ))
                }
            }
            // Skip "." and "..".
            if name[0] == UInt8(ascii: "."), name.count == 2 || (name.count == 3 && name[1] == UInt8(ascii: ".")) {
                continue
            }
            entries.append(DirectoryEntry(name: name, isRegular: Int32(entry.pointee.d_type) == Int32(DT_REG)))
        }
        // Comparing with the terminating NUL included orders a prefix before its extensions, as bytewise order does.
        entries.sort { a, b in
            a.name.withUnsafeBytes { pa in
                b.name.withUnsafeBytes { pb in memcmp(pa.baseAddress!, pb.baseAddress!, min(pa.count, pb.count)) < 0 }
            }
        }
        return entries
    }

    /// Streams `size` bytes of `fd` as a contents token, failing if the file is not exactly that long.
    private mutating func dumpContents(fd: Int32, size: UInt64, _ sink: NarWriter.Sink) throws {
        try appendLength(size, sink)
        var remaining = size
        while true {
            if used == capacity { try flush(sink) }
            let free = UInt64(capacity - used)
            // Asking for one byte more than is left detects a file that grew, without an extra read at the end.
            let wanted = remaining < free ? remaining + 1 : free
            let count = read(fd, buffer + used, Int(wanted))
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("read")
            }
            if count == 0 {
                if remaining == 0 { break }
                throw NarWriteError(
                    path: pathString,
                    reason: .fileChangedSize(expected: size, observed: "it ended after \(size - remaining) bytes"))
            }
            if UInt64(count) > remaining {
                throw NarWriteError(
                    path: pathString, reason: .fileChangedSize(expected: size, observed: "it grew beyond that"))
            }
            used += count
            remaining -= UInt64(count)
            // A short read of a regular file means end of file.
            if remaining == 0 && UInt64(count) < wanted { break }
        }
        try appendPadding(NarFormat.padding(for: size), sink)
    }
}
