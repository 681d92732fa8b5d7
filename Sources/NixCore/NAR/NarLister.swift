/// A visitor that records every entry (metadata only, never contents), for `nar ls` and inspection.
public struct NarLister: NarVisitor, Sendable {
    public private(set) var entries: [NarEntry] = []

    public init() {}

    public mutating func createDirectory(at path: NarPath) {
        entries.append(NarEntry(path: path, kind: .directory))
    }
    public mutating func createRegularFile(at path: NarPath, executable: Bool, size: UInt64, contentsOffset: UInt64) {
        entries.append(
            NarEntry(path: path, kind: .regular, size: size, executable: executable, contentsOffset: contentsOffset))
    }
    public mutating func receiveContents(_ chunk: UnsafeRawBufferPointer) {}
    public mutating func closeRegularFile() {}
    public mutating func createSymlink(at path: NarPath, target: [UInt8]) {
        entries.append(NarEntry(path: path, kind: .symlink, target: target))
    }
}
