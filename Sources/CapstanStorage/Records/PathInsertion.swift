/// How an attempt to record a path ended: it is now the cache's, another upload's row was there
/// first, or the upload came too late to be recorded safely.
public enum PathInsertion: Sendable, Equatable {
    case inserted
    /// The cache already held this hash part; the row that won.
    case present(PathRecord)
    /// The check made inside the deciding transaction said no: nothing was recorded.
    case tooLate
    /// Asked to require its references: these hash parts were not in the cache; nothing was recorded.
    case referencesMissing([String])
}
