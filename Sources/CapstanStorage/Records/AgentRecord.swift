import Foundation
import NixCore

/// A machine that pulls deployments: registered by name in a workspace, updated as it reports in.
public struct AgentRecord: Sendable, Equatable, Hashable {
    public var id: String
    public var workspaceID: String
    /// Unique within the workspace; the name `deploy.json` uses for this machine.
    public var name: String
    /// The cache the agent substitutes from; nil when that cache was deleted.
    public var cacheID: String?
    /// The Nix system it reported, e.g. `x86_64-linux`.
    public var system: String?
    /// The agent software version it reported.
    public var version: String?
    /// The store path its profile points to, as last reported.
    public var currentStorePath: StorePath?
    public var lastSeen: Date?
    /// Whether its machine must reboot to run its deployed configuration, as last reported.
    public var needsReboot: Bool?
    public var createdAt: Date

    public init(
        id: String, workspaceID: String, name: String, cacheID: String? = nil, system: String? = nil,
        version: String? = nil, currentStorePath: StorePath? = nil, lastSeen: Date? = nil, needsReboot: Bool? = nil,
        createdAt: Date
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.name = name
        self.cacheID = cacheID
        self.system = system
        self.version = version
        self.currentStorePath = currentStorePath
        self.lastSeen = lastSeen
        self.needsReboot = needsReboot
        self.createdAt = createdAt
    }
}
