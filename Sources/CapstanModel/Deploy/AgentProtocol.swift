import Foundation
import NixCore

/// Messages on the agent's WebSocket (`GET /api/v1/agent/connect`), JSON text frames, one
/// message each, discriminated by `type`. The agent authenticates with its token (Bearer).
public enum AgentProtocol {
    public static let path = "/api/v1/agent/connect"
    public static let version = 1
}

/// Agent → server.
public enum AgentMessage: Codable, Sendable, Equatable {
    /// First message: who the agent is and what it runs now.
    case hello(AgentHello)
    /// The agent took a deployment (closure size once it is known; sent again then).
    case started(id: String, closureSize: Int64?)
    case log(id: String, lines: [LogLine])
    case finished(DeploymentOutcome)
    /// What the agent knows about its machine changed (sent when it does).
    case status(AgentStatus)
    /// What someone did on the machine itself with `capstan deploy local`, reported once.
    case localAction(LocalActionReport)

    private enum CodingKeys: String, CodingKey {
        case type, hello, id, closureSize, lines, outcome, status, localAction
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "hello": self = .hello(try container.decode(AgentHello.self, forKey: .hello))
        case "started":
            self = .started(
                id: try container.decode(String.self, forKey: .id),
                closureSize: try container.decodeIfPresent(Int64.self, forKey: .closureSize))
        case "log":
            self = .log(
                id: try container.decode(String.self, forKey: .id),
                lines: try container.decode([LogLine].self, forKey: .lines))
        case "finished": self = .finished(try container.decode(DeploymentOutcome.self, forKey: .outcome))
        case "status": self = .status(try container.decode(AgentStatus.self, forKey: .status))
        case "localAction": self = .localAction(try container.decode(LocalActionReport.self, forKey: .localAction))
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container, debugDescription: "unknown agent message type '\(other)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .hello(let hello):
            try container.encode("hello", forKey: .type)
            try container.encode(hello, forKey: .hello)
        case .started(let id, let closureSize):
            try container.encode("started", forKey: .type)
            try container.encode(id, forKey: .id)
            try container.encodeIfPresent(closureSize, forKey: .closureSize)
        case .log(let id, let lines):
            try container.encode("log", forKey: .type)
            try container.encode(id, forKey: .id)
            try container.encode(lines, forKey: .lines)
        case .finished(let outcome):
            try container.encode("finished", forKey: .type)
            try container.encode(outcome, forKey: .outcome)
        case .status(let status):
            try container.encode("status", forKey: .type)
            try container.encode(status, forKey: .status)
        case .localAction(let report):
            try container.encode("localAction", forKey: .type)
            try container.encode(report, forKey: .localAction)
        }
    }
}

public struct AgentHello: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    /// Nix system, e.g. `x86_64-linux`.
    public var system: String
    /// What the agent's profile points at now.
    public var currentStorePath: StorePath?
    /// A deployment the agent is still running (it survived an agent restart), if any.
    public var runningDeployment: String?
    /// Whether the machine must reboot to run its deployed configuration; nil when the agent cannot tell.
    public var needsReboot: Bool?

    public init(
        name: String, version: String, system: String, currentStorePath: StorePath?, runningDeployment: String?,
        needsReboot: Bool? = nil
    ) {
        self.name = name
        self.version = version
        self.system = system
        self.currentStorePath = currentStorePath
        self.runningDeployment = runningDeployment
        self.needsReboot = needsReboot
    }

    /// The agent's machine may be hostile: a current path that is not a store path is not believed,
    /// as if the agent had not said, rather than refusing the agent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        version = try container.decode(String.self, forKey: .version)
        system = try container.decode(String.self, forKey: .system)
        currentStorePath = try? container.decodeIfPresent(StorePath.self, forKey: .currentStorePath)
        runningDeployment = try container.decodeIfPresent(String.self, forKey: .runningDeployment)
        needsReboot = try container.decodeIfPresent(Bool.self, forKey: .needsReboot)
    }
}

/// What an agent reports about its machine between deployments.
public struct AgentStatus: Codable, Sendable, Equatable {
    /// The booted kernel, initrd or kernel modules differ from the deployed configuration's; nil when
    /// the agent cannot tell (no booted system, or a profile without a kernel).
    public var needsReboot: Bool?

    public init(needsReboot: Bool?) {
        self.needsReboot = needsReboot
    }
}

public struct DeploymentOutcome: Codable, Sendable, Equatable {
    public var id: String
    public var succeeded: Bool
    /// Why it failed.
    public var reason: String?
    /// After a failure: the previous configuration is active again.
    public var rolledBack: Bool
    /// What the profile points at now.
    public var currentStorePath: StorePath?
    /// The agent stopped it because the server cancelled it (not succeeded, and not a failure).
    public var cancelled: Bool
    /// The health checks that ran, nil when there were none.
    public var checks: [CheckResult]?

    public init(
        id: String, succeeded: Bool, reason: String?, rolledBack: Bool, currentStorePath: StorePath?,
        cancelled: Bool = false, checks: [CheckResult]? = nil
    ) {
        self.id = id
        self.succeeded = succeeded
        self.reason = reason
        self.rolledBack = rolledBack
        self.currentStorePath = currentStorePath
        self.cancelled = cancelled
        self.checks = checks
    }

    private enum CodingKeys: String, CodingKey {
        case id, succeeded, reason, rolledBack, currentStorePath, cancelled, checks
    }

    /// An agent that predates cancelling and checks sends neither field.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        succeeded = try container.decode(Bool.self, forKey: .succeeded)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        rolledBack = try container.decode(Bool.self, forKey: .rolledBack)
        // Not believed when it is not a store path: the server records the deployment's own path.
        currentStorePath = try? container.decodeIfPresent(StorePath.self, forKey: .currentStorePath)
        cancelled = try container.decodeIfPresent(Bool.self, forKey: .cancelled) ?? false
        checks = try container.decodeIfPresent([CheckResult].self, forKey: .checks)
    }
}

/// The cache an agent substitutes from.
public struct AgentCache: Codable, Sendable, Equatable {
    public var name: String
    public var url: String
    public var publicKey: String
    public var isPublic: Bool

    public init(name: String, url: String, publicKey: String, isPublic: Bool) {
        self.name = name
        self.url = url
        self.publicKey = publicKey
        self.isPublic = isPublic
    }
}

/// What the agent should deploy.
public struct DeploymentOrder: Codable, Sendable, Equatable {
    public var id: String
    public var index: Int
    public var storePath: StorePath
    /// The rollback (health-check) script for the agent's system, if the deploy.json has one.
    public var rollbackScript: StorePath?
    /// Health checks, grace period and activation timeout the deploy.json asks for; nil when none.
    public var activation: ActivationSettings?

    public init(
        id: String, index: Int, storePath: StorePath, rollbackScript: StorePath?, activation: ActivationSettings? = nil
    ) {
        self.id = id
        self.index = index
        self.storePath = storePath
        self.rollbackScript = rollbackScript
        self.activation = activation
    }
}

/// Server → agent.
public enum ServerMessage: Codable, Sendable, Equatable {
    /// Answer to hello: the agent's identity and its cache.
    case welcome(agentID: String, cache: AgentCache?)
    case deploy(DeploymentOrder)
    /// The deployment is cancelled: the agent drops it if it has not started it, stops it before
    /// the switch, or rolls it back after; it then reports it finished as cancelled.
    case cancel(id: String)

    private enum CodingKeys: String, CodingKey { case type, agentID, cache, deployment, id }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "welcome":
            self = .welcome(
                agentID: try container.decode(String.self, forKey: .agentID),
                cache: try container.decodeIfPresent(AgentCache.self, forKey: .cache))
        case "deploy": self = .deploy(try container.decode(DeploymentOrder.self, forKey: .deployment))
        case "cancel": self = .cancel(id: try container.decode(String.self, forKey: .id))
        case let other:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: container, debugDescription: "unknown server message type '\(other)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .welcome(let agentID, let cache):
            try container.encode("welcome", forKey: .type)
            try container.encode(agentID, forKey: .agentID)
            try container.encodeIfPresent(cache, forKey: .cache)
        case .deploy(let order):
            try container.encode("deploy", forKey: .type)
            try container.encode(order, forKey: .deployment)
        case .cancel(let id):
            try container.encode("cancel", forKey: .type)
            try container.encode(id, forKey: .id)
        }
    }
}
