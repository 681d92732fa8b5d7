/// How much a cache holds.
public struct CacheStats: Sendable, Equatable {
    public var pathCount: Int
    /// Total size of the uncompressed NARs.
    public var narSize: Int64
    /// Total size of the stored (compressed) files.
    public var fileSize: Int64

    public init(pathCount: Int, narSize: Int64, fileSize: Int64) {
        self.pathCount = pathCount
        self.narSize = narSize
        self.fileSize = fileSize
    }
}
