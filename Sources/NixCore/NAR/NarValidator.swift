/// A visitor that only counts: parsing with it checks that a NAR is well formed without writing anything.
public struct NarValidator: NarVisitor, Sendable {
    public private(set) var directories = 0
    public private(set) var regularFiles = 0
    public private(set) var symlinks = 0
    /// Total size of all file contents.
    public private(set) var contentBytes: UInt64 = 0

    public init() {}

    public mutating func createDirectory(at path: NarPath) { directories += 1 }
    public mutating func createRegularFile(at path: NarPath, executable: Bool, size: UInt64, contentsOffset: UInt64) {
        regularFiles += 1
        contentBytes += size
    }
    public mutating func receiveContents(_ chunk: UnsafeRawBufferPointer) {}
    public mutating func closeRegularFile() {}
    public mutating func createSymlink(at path: NarPath, target: [UInt8]) { symlinks += 1 }
}
