import Foundation

/// A workspace: the owner of caches, tokens, agents and deployments.
public struct WorkspaceRecord: Sendable, Equatable, Hashable {
    /// A UUID string.
    public var id: String
    public var name: String
    public var createdAt: Date

    public init(id: String, name: String, createdAt: Date) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
    }
}
