import Foundation

/// One entry of a workspace's audit log: who (the acting token's label) did what, to what, when.
public struct AuditEvent: Codable, Sendable, Equatable {
    public var id: String
    public var time: Date
    public var actor: String?
    public var actorTokenID: String?
    public var action: String
    public var target: String?
    public var detail: String?

    public init(
        id: String, time: Date, actor: String?, actorTokenID: String?, action: String, target: String?,
        detail: String?
    ) {
        self.id = id
        self.time = time
        self.actor = actor
        self.actorTokenID = actorTokenID
        self.action = action
        self.target = target
        self.detail = detail
    }
}
