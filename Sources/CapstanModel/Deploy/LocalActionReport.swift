import Foundation
import NixCore

/// A break-glass action someone ran on an agent's machine without the server
/// (`capstan deploy local rollback|activate`), as the agent reports it once it is connected again.
public struct LocalActionReport: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable {
        case rollback
        case activate
    }

    public var id: String
    public var action: Action
    /// The configuration it activated.
    public var storePath: StorePath
    /// What the profile pointed at before.
    public var previousStorePath: StorePath?
    public var succeeded: Bool
    public var reason: String?
    /// After a failure: the configuration before it is active again.
    public var rolledBack: Bool
    public var startedAt: Date
    public var finishedAt: Date

    public init(
        id: String, action: Action, storePath: StorePath, previousStorePath: StorePath?, succeeded: Bool,
        reason: String?,
        rolledBack: Bool, startedAt: Date, finishedAt: Date
    ) {
        self.id = id
        self.action = action
        self.storePath = storePath
        self.previousStorePath = previousStorePath
        self.succeeded = succeeded
        self.reason = reason
        self.rolledBack = rolledBack
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }

    /// One line for the audit log: what, to which configuration, when, and how it ended.
    public var summary: String {
        let formatter = ISO8601DateFormatter()
        let ended =
            succeeded ? "succeeded" : "failed: \(reason ?? "no reason given")" + (rolledBack ? " (rolled back)" : "")
        return "\(action.rawValue) to \(storePath) on the machine at \(formatter.string(from: startedAt)): \(ended)"
    }
}
