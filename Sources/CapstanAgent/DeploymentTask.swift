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
    /// The agent's settings of the activation; optional so that an order written by an older agent still reads.
    public var activationMode: ActivationMode?
    public var activationTimeoutSeconds: Double?
    /// The agent's own health checks.
    public var checks: [HealthCheck]?
    public var checkGraceSeconds: Double?

    public init(
        order: DeploymentOrder, cache: AgentCache?, token: String, serverURL: String, profilePath: String,
        system: String, verifyTimeoutSeconds: Double, activationMode: ActivationMode = .twoPhase,
        activationTimeoutSeconds: Double = 600, checks: [HealthCheck] = [], checkGraceSeconds: Double = 30
    ) {
        self.order = order
        self.cache = cache
        self.token = token
        self.serverURL = serverURL
        self.profilePath = profilePath
        self.system = system
        self.verifyTimeoutSeconds = verifyTimeoutSeconds
        self.activationMode = activationMode
        self.activationTimeoutSeconds = activationTimeoutSeconds
        self.checks = checks
        self.checkGraceSeconds = checkGraceSeconds
    }

    /// The agent's timeout, or the deployment's when that is shorter.
    public var activationTimeout: Duration {
        let own = Duration.milliseconds(Int64((activationTimeoutSeconds ?? 600) * 1000))
        guard let asked = order.activation?.timeout?.duration else { return own }
        return min(own, asked)
    }

    /// The deployment's checks, then the agent's own.
    public var allChecks: [HealthCheck] { (order.activation?.checks ?? []) + (checks ?? []) }

    /// The deployment's grace period, else the agent's.
    public var checkGrace: Duration {
        order.activation?.grace?.duration ?? .milliseconds(Int64((checkGraceSeconds ?? 30) * 1000))
    }
}

/// `started.json`: written by the runner once the closure is realised.
public struct DeploymentStarted: Codable, Sendable, Equatable {
    public var closureSize: Int64?
    public init(closureSize: Int64?) { self.closureSize = closureSize }
}
