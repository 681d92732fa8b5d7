/// One entry of a NAR as listings show it.
public struct NarEntry: Sendable, Hashable {
    public enum Kind: String, Sendable {
        case regular, directory, symlink
    }

    public var path: NarPath
    public var kind: Kind
    /// Contents size of a regular file; 0 otherwise.
    public var size: UInt64
    public var executable: Bool
    /// Where a regular file's contents start in the archive.
    public var contentsOffset: UInt64?
    /// Raw target bytes of a symlink.
    public var target: [UInt8]?

    public init(
        path: NarPath, kind: Kind, size: UInt64 = 0, executable: Bool = false, contentsOffset: UInt64? = nil,
        target: [UInt8]? = nil
    ) {
        self.path = path
        self.kind = kind
        self.size = size
        self.executable = executable
        self.contentsOffset = contentsOffset
        self.target = target
    }

    /// `ls -l`-style permissions as Nix shows them for store contents (which are read-only).
    public var modeString: String {
        switch kind {
        case .directory: "dr-xr-xr-x"
        case .symlink: "lrwxrwxrwx"
        case .regular: executable ? "-r-xr-xr-x" : "-r--r--r--"
        }
    }
}
