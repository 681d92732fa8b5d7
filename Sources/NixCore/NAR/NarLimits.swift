/// Bounds a parser enforces so a hostile archive cannot make it recurse or allocate without limit.
public struct NarLimits: Sendable, Equatable {
    /// Deepest path (number of names from the root) accepted.
    public var maxDepth: Int
    public var maxNameLength: Int
    public var maxTargetLength: Int

    public init(maxDepth: Int = 256, maxNameLength: Int = 4096, maxTargetLength: Int = 4096) {
        self.maxDepth = maxDepth
        self.maxNameLength = maxNameLength
        self.maxTargetLength = maxTargetLength
    }

    public static let `default` = NarLimits()
}
