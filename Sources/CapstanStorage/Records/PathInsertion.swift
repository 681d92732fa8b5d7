/// How an attempt to record a path ended: it is now the cache's, or another upload's row was there first.
public enum PathInsertion: Sendable, Equatable {
    case inserted
    /// The cache already held this hash part; the row that won.
    case present(PathRecord)
}
