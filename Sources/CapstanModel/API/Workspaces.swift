import Foundation

public struct CreateWorkspaceRequest: Codable, Sendable {
    public var name: String
    public init(name: String) { self.name = name }
}

public struct CreatedWorkspace: Codable, Sendable {
    public var name: String
    /// The new workspace's first admin token, shown once.
    public var adminToken: String
    public init(name: String, adminToken: String) {
        self.name = name
        self.adminToken = adminToken
    }
}
