import CapstanModel
import Foundation

/// A rollout as stored: the deployments of one activation in waves, and how far it got.
public struct RolloutRecord: Sendable, Equatable {
    public var id: String
    public var workspaceID: String
    public var activationID: String
    public var state: RolloutState
    /// The wave running or last run, from 0.
    public var wave: Int
    public var waveCount: Int
    public var maxFailures: Int
    public var pauseMilliseconds: Int64
    /// Set once the current wave succeeded: when the next one starts.
    public var nextWaveAt: Date?
    public var reason: String?
    public var createdBy: String?
    public var createdAt: Date
    public var finishedAt: Date?
}

/// What `createDeployments` stores besides the deployments when the deploy.json has a rollout.
public struct RolloutPlan: Sendable, Equatable {
    public var id: String
    /// The wave of each agent's deployment, from 0; deployments of wave 0 go out at once.
    public var waveOfAgent: [String: Int]
    public var waveCount: Int
    public var maxFailures: Int
    public var pauseMilliseconds: Int64

    public init(id: String, waveOfAgent: [String: Int], waveCount: Int, maxFailures: Int, pauseMilliseconds: Int64) {
        self.id = id
        self.waveOfAgent = waveOfAgent
        self.waveCount = waveCount
        self.maxFailures = maxFailures
        self.pauseMilliseconds = pauseMilliseconds
    }
}

/// One deployment of a rollout, with its wave and whether it is still held back from its agent.
public struct RolloutMember: Sendable, Equatable {
    public var deployment: DeploymentRecord
    public var wave: Int
    public var held: Bool
}

/// Where a deployment stands in its rollout.
public struct RolloutMembership: Sendable, Equatable {
    public var rolloutID: String
    public var wave: Int
    public var held: Bool
}

/// A rollout that just ended, with the deployments its end cancelled before they started.
public struct RolloutEnd: Sendable, Equatable {
    public var rollout: RolloutRecord
    public var cancelled: [DeploymentRecord]
}
