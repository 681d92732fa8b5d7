import CapstanModel
import Foundation

/// Everything the detached runner needs for one deployment, written by the agent as `order.json`
/// so that the runner depends on nothing but its state directory.
public struct DeploymentTask: Codable, Sendable, Equatable {
    public var order: DeploymentOrder
    /// The cache to substitute from; nil when the server named none (paths must then be local).
    public var cache: AgentCache?
    /// The agent token: the password for a private cache and nothing else.
    public var token: String
    /// The server, whose `/health` must answer after the activation.
    public var serverURL: String
    /// `<profilesDirectory>/<profile>`.
    public var profilePath: String
    /// The agent's Nix system; a configuration built for another one is refused.
    public var system: String
    public var verifyTimeoutSeconds: Double

    public init(
        order: DeploymentOrder, cache: AgentCache?, token: String, serverURL: String, profilePath: String,
        system: String, verifyTimeoutSeconds: Double
    ) {
        self.order = order
        self.cache = cache
        self.token = token
        self.serverURL = serverURL
        self.profilePath = profilePath
        self.system = system
        self.verifyTimeoutSeconds = verifyTimeoutSeconds
    }
}

/// `started.json`: written by the runner once the closure is realised.
public struct DeploymentStarted: Codable, Sendable, Equatable {
    public var closureSize: Int64?
    public init(closureSize: Int64?) { self.closureSize = closureSize }
}
