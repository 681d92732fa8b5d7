/// Receives the entries of a NAR from `NarParser`, in archive order (a directory before its entries,
/// entries in bytewise name order). Paths passed here were validated: names are never empty, `.`, `..`,
/// and never contain `/` or NUL.
public protocol NarVisitor {
    mutating func createDirectory(at path: NarPath) throws
    /// Called once every entry of the directory at `path` was visited.
    mutating func closeDirectory(at path: NarPath) throws
    /// Starts a regular file; its `size` bytes follow through `receiveContents`, then `closeRegularFile`.
    /// `contentsOffset` is where the bytes start in the archive (for range requests into a stored NAR).
    mutating func createRegularFile(at path: NarPath, executable: Bool, size: UInt64, contentsOffset: UInt64) throws
    /// A piece of the current file's contents; the buffer is only valid during the call.
    mutating func receiveContents(_ chunk: UnsafeRawBufferPointer) throws
    mutating func closeRegularFile() throws
    /// A symlink; `target` is raw bytes, as the archive holds it (never empty, never containing NUL).
    mutating func createSymlink(at path: NarPath, target: [UInt8]) throws
}

extension NarVisitor {
    public mutating func closeDirectory(at path: NarPath) throws {}
}
