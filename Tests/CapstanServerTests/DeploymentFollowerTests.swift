import CapstanClient
import CapstanModel
import Foundation
import NixCore
import Synchronization
import TestSupport
import Testing

/// The follower behind `deploy activate`, in process against the real server: it ends when every
/// deployment ends, and names those still running when the deadline passes.
@Suite(.serialized) struct DeploymentFollowerTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let api: CapstanAPIClient

    init() throws {
        temp = try TemporaryDirectory("capstan-follower")
        server = try ServerProcess(dataDirectory: temp.sub("data"))
        api = CapstanAPIClient(baseURL: server.url, token: try server.adminToken)
    }

    func activate(_ agents: [String]) async throws -> [(agent: String, id: String)] {
        for agent in agents { _ = try await api.createAgent(CreateAgentRequest(name: agent)) }
        let spec = DeploySpec(
            agents: Dictionary(
                uniqueKeysWithValues: agents.map { ($0, StorePath.named("system")) }))
        let response = try await api.activate(deployJSON: try JSONEncoder().encode(spec))
        return response.agents.map { (agent: $0.key, id: $0.value.id) }.sorted { $0.agent < $1.agent }
    }

    /// The deployments never end, so a follower that ignored its deadline would run into the time limit.
    @Test(.timeLimit(.minutes(10))) func theDeadlineNamesTheDeploymentsStillRunning() async throws {
        let deployments = try await activate(["offline1", "offline2"])
        let reminders = Mutex<Int>(0)
        let outcome = await DeploymentFollower(api: api, reminderInterval: .milliseconds(300)).follow(
            deployments, timeout: .seconds(2)
        ) { event in
            if case .waiting(let agents) = event {
                #expect(agents.map(\.agent) == ["offline1", "offline2"])
                #expect(agents.allSatisfy { $0.online != true }, "\(agents)")
                reminders.withLock { $0 += 1 }
            }
        }
        // It stops at the deadline, not when the (never-ending) deployments would; how soon after the
        // deadline depends on how busy the test process's threads are, hence the time limit, not a bound.
        #expect(outcome.timedOut == ["offline1", "offline2"])
        #expect(outcome.deployments.map(\.status) == [.pending, .pending])
        // Reminders come every 300 ms while waiting; how many fit in 2 s depends on the machine's load,
        // so only what they say is checked (above), not their number.
    }

    @Test func followingEndsWhenEveryDeploymentEnds() async throws {
        let deployments = try await activate(["gone1"])
        let api = api
        let cancel = Task {
            try await Task.sleep(for: .milliseconds(500))
            _ = try await api.cancelDeployment(id: deployments[0].id)
        }
        let outcome = await DeploymentFollower(api: api).follow(deployments, timeout: .seconds(60))
        try await cancel.value
        #expect(outcome.timedOut.isEmpty)
        #expect(outcome.deployments.map(\.status) == [.cancelled])
    }
}
