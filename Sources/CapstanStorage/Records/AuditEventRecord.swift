import Foundation

/// One thing a person or machine did to a workspace, as the audit log keeps it.
public struct AuditEventRecord: Sendable, Equatable {
    public var id: String
    public var workspaceID: String
    public var time: Date
    /// The label of the token that acted (nil when the token has none).
    public var actor: String?
    public var actorTokenID: String?
    /// `deployment.activate`, `deployment.cancel`, `token.create`, …
    public var action: String
    /// What was acted on: a deployment id, an agent, cache or token name.
    public var target: String?
    public var detail: String?

    public init(
        id: String = UUID().uuidString.lowercased(), workspaceID: String, time: Date, actor: String?,
        actorTokenID: String?, action: String, target: String?, detail: String?
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.time = time
        self.actor = actor
        self.actorTokenID = actorTokenID
        self.action = action
        self.target = target
        self.detail = detail
    }
}
