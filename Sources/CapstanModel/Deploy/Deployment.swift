import Foundation
import NixCore

/// `Pending → InProgress → Succeeded | Failed | Cancelled`; names as Cachix Deploy spells them.
public enum DeploymentStatus: String, Codable, Sendable, CaseIterable {
    case pending = "Pending"
    case inProgress = "InProgress"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case cancelled = "Cancelled"

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

public struct DeploymentInfo: Codable, Sendable, Equatable {
    public var id: String
    public var agent: String
    /// 1, 2, 3… per agent.
    public var index: Int
    public var storePath: StorePath
    public var rollbackScript: StorePath?
    public var status: DeploymentStatus
    /// Why it failed or was cancelled.
    public var reason: String?
    /// On failure: whether the agent went back to its previous configuration.
    public var rolledBack: Bool
    public var closureSize: Int64?
    public var createdOn: Date
    public var startedOn: Date?
    public var finishedOn: Date?
    /// Label of the token that started it.
    public var createdBy: String?
    /// The dashboard page of this deployment.
    public var url: String
    /// The agent's health checks after the activation, once it reported them.
    public var checks: [CheckResult]?
    /// The rollout this deployment is part of, and its wave (from 0) in it.
    public var rollout: String?
    public var wave: Int?

    public init(
        id: String, agent: String, index: Int, storePath: StorePath, rollbackScript: StorePath?,
        status: DeploymentStatus,
        reason: String?, rolledBack: Bool, closureSize: Int64?, createdOn: Date, startedOn: Date?, finishedOn: Date?,
        createdBy: String?, url: String, checks: [CheckResult]? = nil, rollout: String? = nil, wave: Int? = nil
    ) {
        self.rollout = rollout
        self.wave = wave
        self.id = id
        self.agent = agent
        self.index = index
        self.storePath = storePath
        self.rollbackScript = rollbackScript
        self.status = status
        self.reason = reason
        self.rolledBack = rolledBack
        self.closureSize = closureSize
        self.createdOn = createdOn
        self.startedOn = startedOn
        self.finishedOn = finishedOn
        self.createdBy = createdBy
        self.url = url
        self.checks = checks
    }
}

/// The answer to an activation: one deployment per agent.
public struct ActivateResponse: Codable, Sendable {
    public struct Created: Codable, Sendable, Equatable {
        public var id: String
        public var index: Int
        public var url: String
        public init(id: String, index: Int, url: String) {
            self.id = id
            self.index = index
            self.url = url
        }
    }

    /// A deploy.json with a `rollout`: the rollout the deployments belong to.
    public struct Rollout: Codable, Sendable, Equatable {
        public var id: String
        public var url: String
        /// Agent names per wave, in the order they run.
        public var waves: [[String]]
        public init(id: String, url: String, waves: [[String]]) {
            self.id = id
            self.url = url
            self.waves = waves
        }
    }

    public var agents: [String: Created]
    public var rollout: Rollout?
    public init(agents: [String: Created], rollout: Rollout? = nil) {
        self.agents = agents
        self.rollout = rollout
    }
}

public struct LogLine: Codable, Sendable, Equatable {
    public var time: Date
    public var line: String
    public init(time: Date, line: String) {
        self.time = time
        self.line = line
    }
}

/// One item of a followed log: lines, then a last item carrying the final deployment.
public struct LogStreamItem: Codable, Sendable {
    public var line: LogLine?
    public var end: DeploymentInfo?
    public init(line: LogLine? = nil, end: DeploymentInfo? = nil) {
        self.line = line
        self.end = end
    }
}

public struct AgentInfo: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var online: Bool
    public var lastSeen: Date?
    public var system: String?
    public var version: String?
    public var currentStorePath: StorePath?
    public var currentDeployment: String?
    public var currentStatus: DeploymentStatus?
    /// The machine must reboot to run its deployed configuration (kernel, initrd or modules changed);
    /// nil when its agent has not said.
    public var needsReboot: Bool?
    public var createdAt: Date

    public init(
        id: String, name: String, online: Bool, lastSeen: Date?, system: String?, version: String?,
        currentStorePath: StorePath?, currentDeployment: String?, currentStatus: DeploymentStatus?,
        needsReboot: Bool? = nil, createdAt: Date
    ) {
        self.id = id
        self.name = name
        self.online = online
        self.lastSeen = lastSeen
        self.system = system
        self.version = version
        self.currentStorePath = currentStorePath
        self.currentDeployment = currentDeployment
        self.currentStatus = currentStatus
        self.needsReboot = needsReboot
        self.createdAt = createdAt
    }
}

public struct CreateAgentRequest: Codable, Sendable {
    public var name: String
    /// The cache the agent substitutes from; the workspace's only (or first) cache when absent.
    public var cache: String?
    public init(name: String, cache: String? = nil) {
        self.name = name
        self.cache = cache
    }
}

public struct CreatedAgent: Codable, Sendable {
    public var agent: AgentInfo
    /// The agent's token, shown once.
    public var token: String
    public init(agent: AgentInfo, token: String) {
        self.agent = agent
        self.token = token
    }
}
