import Foundation

/// `Running → Succeeded | Failed | Aborted`, with `Paused` in between while an operator holds it.
public enum RolloutState: String, Codable, Sendable, CaseIterable {
    case running = "Running"
    case paused = "Paused"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case aborted = "Aborted"

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .aborted }
}

/// A rollout as the API shows it: its waves, each agent's deployment in them, and where it stands.
public struct RolloutInfo: Codable, Sendable, Equatable {
    public struct Member: Codable, Sendable, Equatable {
        public var agent: String
        public var deployment: String
        public var index: Int
        public var status: DeploymentStatus
        /// Created but not sent to the agent: its wave has not started.
        public var held: Bool
        public var reason: String?
        public var startedOn: Date?
        public var finishedOn: Date?

        public init(
            agent: String, deployment: String, index: Int, status: DeploymentStatus, held: Bool, reason: String?,
            startedOn: Date?, finishedOn: Date?
        ) {
            self.agent = agent
            self.deployment = deployment
            self.index = index
            self.status = status
            self.held = held
            self.reason = reason
            self.startedOn = startedOn
            self.finishedOn = finishedOn
        }
    }

    public var id: String
    public var state: RolloutState
    /// The wave running or last run, counted from 0.
    public var currentWave: Int
    public var waves: [[Member]]
    public var maxFailures: Int
    public var pause: TimeSpan?
    /// When the pause after the current wave ends and the next wave starts.
    public var nextWaveAt: Date?
    /// Why it stopped.
    public var reason: String?
    public var createdBy: String?
    public var createdOn: Date
    public var finishedOn: Date?
    /// The dashboard page of this rollout.
    public var url: String

    public init(
        id: String, state: RolloutState, currentWave: Int, waves: [[Member]], maxFailures: Int, pause: TimeSpan?,
        nextWaveAt: Date?, reason: String?, createdBy: String?, createdOn: Date, finishedOn: Date?, url: String
    ) {
        self.id = id
        self.state = state
        self.currentWave = currentWave
        self.waves = waves
        self.maxFailures = maxFailures
        self.pause = pause
        self.nextWaveAt = nextWaveAt
        self.reason = reason
        self.createdBy = createdBy
        self.createdOn = createdOn
        self.finishedOn = finishedOn
        self.url = url
    }
}
