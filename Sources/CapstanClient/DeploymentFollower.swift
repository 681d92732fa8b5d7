import CapstanModel
import Foundation
import Synchronization

/// Follows deployments to their end, all at once: each one's log as it is written, reconnecting
/// (more slowly each time) when the stream breaks, a reminder of those still waiting, and a
/// deadline. What `capstan deploy activate` and the effects wait with.
public struct DeploymentFollower: Sendable {
    public enum Event: Sendable {
        case line(agent: String, LogLine)
        /// The log stream broke; the follower reconnects.
        case reconnecting(agent: String, error: String)
        /// Those still running after a while, each with whether its agent is online (nil: unknown).
        case waiting([(agent: String, online: Bool?)])
    }

    public struct Outcome: Sendable {
        /// Each followed deployment as it ended, or as it was when the deadline passed.
        public var deployments: [DeploymentInfo]
        /// Agents whose deployment had not finished by the deadline.
        public var timedOut: [String]
    }

    let api: CapstanAPIClient
    public var reminderInterval: Duration
    /// The pause before reconnecting after the n-th broken stream.
    public var backoff: @Sendable (Int) -> Duration

    public init(
        api: CapstanAPIClient, reminderInterval: Duration = .seconds(60),
        backoff: @escaping @Sendable (Int) -> Duration = { .seconds(min(30, 1 << min($0, 5))) }
    ) {
        self.api = api
        self.reminderInterval = reminderInterval
        self.backoff = backoff
    }

    public func follow(
        _ deployments: [(agent: String, id: String)], timeout: Duration?,
        onEvent: @escaping @Sendable (Event) -> Void = { _ in }
    ) async -> Outcome {
        let finished = FinishedDeployments()
        let deadline = timeout.map { ContinuousClock.now + $0 }
        await withTaskGroup(of: Void.self) { group in
            for (agent, id) in deployments {
                group.addTask {
                    var attempt = 0
                    while !Task.isCancelled {
                        do {
                            for try await item in api.followLog(id: id) {
                                if let line = item.line { onEvent(.line(agent: agent, line)) }
                                if let end = item.end {
                                    finished.results.withLock { $0[agent] = end }
                                    return
                                }
                            }
                        } catch {
                            attempt += 1
                            onEvent(.reconnecting(agent: agent, error: "\(error)"))
                        }
                        // The server may be restarting: try again, more slowly each time.
                        try? await Task.sleep(for: backoff(attempt))
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: reminderInterval)
                    let waiting = deployments.map(\.agent).filter { agent in
                        finished.results.withLock { $0[agent] == nil }
                    }
                    if waiting.isEmpty || Task.isCancelled { return }
                    let online = Dictionary(
                        ((try? await api.agents()) ?? []).map { ($0.name, $0.online) }, uniquingKeysWith: { a, _ in a })
                    onEvent(.waiting(waiting.map { (agent: $0, online: online[$0]) }))
                }
            }
            if let deadline {
                group.addTask { try? await Task.sleep(until: deadline) }
            }
            // Done when every deployment finished, or the deadline passed.
            while await group.next() != nil {
                if finished.results.withLock({ $0.count }) == deployments.count { break }
                if let deadline, ContinuousClock.now >= deadline { break }
            }
            group.cancelAll()
        }
        var results: [DeploymentInfo] = []
        var timedOut: [String] = []
        for (agent, id) in deployments {
            if let end = finished.results.withLock({ $0[agent] }) {
                results.append(end)
            } else {
                timedOut.append(agent)
                if let current = try? await api.deployment(id: id) { results.append(current) }
            }
        }
        return Outcome(deployments: results, timedOut: timedOut)
    }
}

/// Deployments that reached a final state, shared by the follower's tasks.
final class FinishedDeployments: Sendable {
    let results = Mutex<[String: DeploymentInfo]>([:])
}
