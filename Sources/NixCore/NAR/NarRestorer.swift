#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Unpacks a NAR into `target`, which must not exist yet and becomes the archive's root
/// (a directory, a file or a symlink), as `nix-store --restore` does.
///
/// Nothing is written outside `target`: every entry is created relative to its parent's directory
/// descriptor with `O_EXCL`/`O_NOFOLLOW`, so no existing file is reused and no symlink is followed.
/// Files get mode 0666 and directories 0777 minus the umask; executables gain the x bits, like Nix.
public final class NarRestorer: NarVisitor {
    public let target: String
    /// Descriptors of the open directories, innermost last.
    private var directories: [Int32] = []
    private var file: Int32 = -1
    private var filePath = NarPath()

    public init(target: String) {
        self.target = target
    }

    deinit {
        if file >= 0 { close(file) }
        for fd in directories { close(fd) }
    }

    /// Reads a NAR from `fileDescriptor` to its end and restores it into `target`; returns the NarSize.
    @discardableResult
    public static func restore(
        from fileDescriptor: Int32, to target: String,
        limits: NarLimits = .default, chunkSize: Int = NarWriter.defaultChunkSize
    ) throws -> UInt64 {
        var parser = NarParser(visitor: NarRestorer(target: target), limits: limits)
        try parser.parse(fileDescriptor: fileDescriptor, chunkSize: chunkSize)
        return parser.offset
    }

    private func fullPath(_ path: NarPath) -> String {
        path.isRoot ? target : target + "/" + path.relativePath
    }

    private func failure(_ operation: String, _ path: NarPath, _ code: Int32 = errno) -> NarRestoreError {
        if code == EEXIST && path.isRoot { return NarRestoreError(path: target, reason: .targetExists) }
        return NarRestoreError(path: fullPath(path), reason: .system(operation: operation, errno: code))
    }

    /// Runs `body` with the parent directory descriptor and NUL-terminated name of `path`.
    private func withLocation<T>(
        _ path: NarPath, _ body: (Int32, UnsafePointer<CChar>) -> T
    ) -> T {
        if path.isRoot { return target.withCString { body(AT_FDCWD, $0) } }
        // The parser guarantees a directory is open for every non-root entry.
        let parent = directories[directories.count - 1]
        let name = path.components[path.components.count - 1] + [0]
        return name.withUnsafeBytes { body(parent, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    }

    public func createDirectory(at path: NarPath) throws {
        let fd = withLocation(path) { parent, name -> Int32 in
            guard mkdirat(parent, name, 0o777) == 0 else { return -1 }
            return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        }
        guard fd >= 0 else { throw failure("mkdir", path) }
        directories.append(fd)
    }

    public func closeDirectory(at path: NarPath) throws {
        if let fd = directories.popLast() { close(fd) }
    }

    public func createRegularFile(at path: NarPath, executable: Bool, size: UInt64, contentsOffset: UInt64) throws {
        let fd = withLocation(path) { parent, name in
            openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o666)
        }
        guard fd >= 0 else { throw failure("create", path) }
        file = fd
        filePath = path
        if executable {
            var status = stat()
            guard fstat(fd, &status) == 0 else { throw failure("fstat", path) }
            guard fchmod(fd, status.st_mode | S_IXUSR | S_IXGRP | S_IXOTH) == 0 else { throw failure("chmod", path) }
        }
    }

    public func receiveContents(_ chunk: UnsafeRawBufferPointer) throws {
        guard var pointer = chunk.baseAddress else { return }
        var left = chunk.count
        while left > 0 {
            let n = write(file, pointer, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("write", filePath)
            }
            pointer += n
            left -= n
        }
    }

    public func closeRegularFile() throws {
        let fd = file
        file = -1
        guard close(fd) == 0 else { throw failure("close", filePath) }
    }

    public func createSymlink(at path: NarPath, target linkTarget: [UInt8]) throws {
        let result = (linkTarget + [0]).withUnsafeBytes { bytes in
            withLocation(path) { parent, name in
                symlinkat(bytes.baseAddress!.assumingMemoryBound(to: CChar.self), parent, name)
            }
        }
        guard result == 0 else { throw failure("symlink", path) }
    }
}
