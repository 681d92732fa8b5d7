import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NixCore
import Testing

/// Rollouts in waves, in process, on both databases: later waves held back from their agents, waves
/// started in order after the pause, failures beyond the allowance stopping the rollout, operators'
/// pause/resume/abort, one replica of two claiming a wave, and a restarted server going on.
@Suite("Rollout rules")
struct RolloutRulesTests {
    static let path = StorePath.known("/nix/store/rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr-system-r")
    static let otherPath = StorePath.known("/nix/store/ssssssssssssssssssssssssssssssss-system-s")

    struct Fleet {
        let services: Services
        let agents: [String: AgentRecord]
        let deployments: [String: String]
        let rollout: String
    }

    /// Agents `a`, `b`, `c` (connected), deployed in `waves`.
    static func rollOut(
        _ services: Services, waves: [[String]], maxFailures: Int = 0, pause: TimeSpan? = nil
    ) async throws -> Fleet {
        var agents: [String: AgentRecord] = [:]
        for name in ["a", "b", "c"] {
            agents[name] = try await services.addAgent(name)
            await services.outbox.connect(agents[name]!.id)
        }
        let response = try await services.deploy.activate(
            DeploySpec(
                agents: ["a": path, "b": path, "c": path],
                rollout: RolloutSpec(waves: waves, maxFailures: maxFailures, pause: pause)),
            by: try await services.principal(.activate))
        let rollout = try #require(response.rollout)
        return Fleet(
            services: services, agents: agents, deployments: response.agents.mapValues(\.id), rollout: rollout.id)
    }

    static func finish(_ fleet: Fleet, _ name: String, succeeded: Bool) async throws {
        let agent = fleet.agents[name]!
        let id = fleet.deployments[name]!
        #expect(try await fleet.services.deploy.agentStarted(agent, deploymentID: id, closureSize: nil))
        try await fleet.services.deploy.agentFinished(
            agent,
            outcome: DeploymentOutcome(
                id: id, succeeded: succeeded, reason: succeeded ? nil : "activation failed", rolledBack: !succeeded,
                currentStorePath: succeeded ? path : nil))
    }

    /// The agents among `names` that would be sent a deployment now.
    static func sendable(_ fleet: Fleet, _ names: [String]) async throws -> Set<String> {
        let orders = try await fleet.services.deploy.pendingOrders(forAgentIDs: names.map { fleet.agents[$0]!.id })
        return Set(names.filter { orders[fleet.agents[$0]!.id] != nil })
    }

    static func status(_ fleet: Fleet, _ name: String) async throws -> DeploymentInfo {
        try await fleet.services.deploy.deployment(
            id: fleet.deployments[name]!, by: try await fleet.services.principal(.activate))
    }

    @Test(arguments: DatabaseBackend.allCases)
    func wavesStartInOrderAndLaterWavesAreHeldFromTheirAgents(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b", "c"]])
            #expect(try await Self.sendable(fleet, ["a", "b", "c"]) == ["a"])
            // The dispatcher sends only the first wave, however the events arrive.
            await services.dispatcher.dispatch(
                ["a", "b", "c"].map {
                    .deploymentCreated(agentID: fleet.agents[$0]!.id, deploymentID: fleet.deployments[$0]!)
                })
            #expect(await services.outbox.messages(to: fleet.agents["a"]!.id).count == 1)
            #expect(await services.outbox.messages(to: fleet.agents["b"]!.id).isEmpty)
            // An agent that heard of a held deployment anyway may not start it.
            #expect(
                try await !services.deploy.agentStarted(
                    fleet.agents["b"]!, deploymentID: fleet.deployments["b"]!, closureSize: nil))
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .waiting)
            let info = try await Self.status(fleet, "b")
            #expect(info.rollout == fleet.rollout)
            #expect(info.wave == 1)

            try await Self.finish(fleet, "a", succeeded: true)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .startedWave(1))
            #expect(try await Self.sendable(fleet, ["b", "c"]) == ["b", "c"])
            // Looking again changes nothing: wave 2 runs.
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .waiting)
            try await Self.finish(fleet, "b", succeeded: true)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .waiting)
            try await Self.finish(fleet, "c", succeeded: true)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .ended(.succeeded))
            let rollout = try await services.deploy.rollout(
                id: fleet.rollout, by: try await services.principal(.activate))
            #expect(rollout.state == .succeeded)
            #expect(rollout.waves.map { $0.map(\.agent) } == [["a"], ["b", "c"]])
            #expect(rollout.waves.joined().allSatisfy { $0.status == .succeeded && !$0.held })
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aFailureBeyondTheAllowanceStopsTheRolloutAndCancelsWhatHasNotStarted(backend: DatabaseBackend)
        async throws
    {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b"], ["c"]])
            try await Self.finish(fleet, "a", succeeded: false)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .ended(.failed))
            for name in ["b", "c"] {
                let info = try await Self.status(fleet, name)
                #expect(info.status == .cancelled)
                #expect(info.reason?.contains("rollout \(fleet.rollout)") == true)
                #expect(info.reason?.contains("a did not succeed") == true)
                #expect(info.startedOn == nil)
            }
            #expect(try await Self.sendable(fleet, ["b", "c"]).isEmpty)
            let rollout = try await services.deploy.rollout(
                id: fleet.rollout, by: try await services.principal(.activate))
            #expect(rollout.state == .failed)
            #expect(rollout.reason?.contains("at most 0 allowed") == true)
            // An ended rollout stays ended.
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .idle)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func failuresWithinTheAllowanceLetTheNextWaveStart(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b"], ["c"]], maxFailures: 1)
            try await Self.finish(fleet, "a", succeeded: false)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .startedWave(1))
            try await Self.finish(fleet, "b", succeeded: false)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .ended(.failed))
            #expect(try await Self.status(fleet, "c").status == .cancelled)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func theNextWaveWaitsForThePause(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b"]], pause: .seconds(30))
            try await Self.finish(fleet, "a", succeeded: true)
            let now = Date()
            guard case .scheduled(let at) = try await services.deploy.advanceRollout(id: fleet.rollout, now: now) else {
                Issue.record("the wave after a succeeded one was not scheduled")
                return
            }
            #expect(abs(at.timeIntervalSince(now) - 30) < 0.01)
            // Still waiting a second before its end (the stored time is in milliseconds).
            let again = try await services.deploy.advanceRollout(id: fleet.rollout, now: now.addingTimeInterval(29))
            guard case .scheduled(let stored) = again else {
                Issue.record("the pause ended early: \(again)")
                return
            }
            #expect(abs(stored.timeIntervalSince(at)) < 0.01)
            #expect(try await Self.sendable(fleet, ["b"]).isEmpty)
            #expect(
                try await services.deploy.advanceRollout(id: fleet.rollout, now: now.addingTimeInterval(30.1))
                    == .startedWave(1))
            #expect(try await Self.sendable(fleet, ["b"]) == ["b"])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func operatorsPauseResumeAndAbortARollout(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b"], ["c"]])
            let admin = try await services.principal(.admin)
            #expect(try await services.deploy.pauseRollout(id: fleet.rollout, by: admin).state == .paused)
            try await Self.finish(fleet, "a", succeeded: true)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .idle)
            #expect(try await Self.sendable(fleet, ["b"]).isEmpty)
            await #expect(throws: ServiceError.self) {
                try await services.deploy.pauseRollout(id: fleet.rollout, by: admin)
            }
            // Resuming starts the wave that waited.
            let resumed = try await services.deploy.resumeRollout(id: fleet.rollout, by: admin)
            #expect(resumed.state == .running)
            #expect(resumed.currentWave == 1)
            #expect(try await Self.sendable(fleet, ["b"]) == ["b"])
            let aborted = try await services.deploy.abortRollout(id: fleet.rollout, by: admin)
            #expect(aborted.state == .aborted)
            #expect(aborted.reason == "aborted by admin token")
            for name in ["b", "c"] {
                let info = try await Self.status(fleet, name)
                #expect(info.status == .cancelled)
                #expect(info.reason?.contains("rollout \(fleet.rollout) was aborted") == true)
            }
            await #expect(throws: ServiceError.self) {
                try await services.deploy.resumeRollout(id: fleet.rollout, by: admin)
            }
            // A token that may only read sees it but may not change it.
            let reader = try await services.principal(.read)
            await #expect(throws: ServiceError.self) {
                try await services.deploy.pauseRollout(id: fleet.rollout, by: reader)
            }
            let actions = try await services.deploy.audit.events(limit: 20, by: admin).map(\.action)
            #expect(actions.contains("rollout.pause"))
            #expect(actions.contains("rollout.resume"))
            #expect(actions.contains("rollout.abort"))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aPausedRolloutStillStopsWhenTooManyFailed(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b", "c"]])
            _ = try await services.deploy.pauseRollout(id: fleet.rollout, by: try await services.principal(.admin))
            try await Self.finish(fleet, "a", succeeded: false)
            #expect(try await services.deploy.advanceRollout(ofDeployment: fleet.deployments["a"]!) == .ended(.failed))
            #expect(try await Self.status(fleet, "b").status == .cancelled)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func ofTwoReplicasExactlyOneStartsTheNextWave(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b"], ["c"]])
            try await Self.finish(fleet, "a", succeeded: true)
            try await services.withReplica { replica in
                let steps = try await withThrowingTaskGroup(of: DeployService.RolloutStep.self) { group in
                    group.addTask { try await services.deploy.advanceRollout(id: fleet.rollout) }
                    group.addTask { try await replica.advanceRollout(id: fleet.rollout) }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(steps.filter { $0 == .startedWave(1) }.count == 1)
                #expect(steps.allSatisfy { [.startedWave(1), .lostClaim, .waiting].contains($0) })
                // Both see the same rollout: wave 2 running, wave 3 held.
                let principal = try await services.principal(.activate)
                let seen = try await replica.rollout(id: fleet.rollout, by: principal)
                #expect(seen.currentWave == 1)
                #expect(seen.waves[2].allSatisfy { $0.held })
                #expect(try await services.deploy.rollout(id: fleet.rollout, by: principal) == seen)
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aRestartedServerGoesOnWithTheRollout(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(
                services, waves: [["a"], ["b", "c"]], pause: TimeSpan(.milliseconds(300)))
            try await Self.finish(fleet, "a", succeeded: true)
            guard case .scheduled = try await services.deploy.advanceRollout(id: fleet.rollout) else {
                Issue.record("the next wave was not scheduled")
                return
            }
            // The server that scheduled the wave is gone; a new one sweeps once the pause is over.
            try await Task.sleep(for: .milliseconds(400))
            let next = try await services.withReplica { restarted in try await restarted.sweepRollouts() }
            #expect(next == nil)
            #expect(try await Self.sendable(fleet, ["b", "c"]) == ["b", "c"])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aNewerDeploymentSupersedesAHeldOneAndTheRolloutCountsIt(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let fleet = try await Self.rollOut(services, waves: [["a"], ["b"], ["c"]], maxFailures: 1)
            let newer = try await services.deploy.activate(
                DeploySpec(agents: ["b": Self.otherPath]), by: try await services.principal(.activate))
            #expect(try await Self.status(fleet, "b").status == .cancelled)
            // The newest deployment wins: the plain one goes out to b at once.
            let orders = try await services.deploy.pendingOrders(forAgentIDs: [fleet.agents["b"]!.id])
            #expect(orders[fleet.agents["b"]!.id]?.id == newer.agents["b"]?.id)
            try await Self.finish(fleet, "a", succeeded: true)
            #expect(try await services.deploy.advanceRollout(id: fleet.rollout) == .startedWave(2))
        }
    }

    @Test func rolloutFieldsOfDeployJSONAreCheckedWithTheirPlace() throws {
        let path = Self.path
        func parse(_ rollout: String) throws(DeploySpecError) -> DeploySpec {
            try DeploySpec.parse(
                Data(
                    #"{"agents": {"web1": "\#(path)", "web2": "\#(path)", "web3": "\#(path)"}, "rollout": \#(rollout)}"#
                        .utf8))
        }
        let spec = try parse(#"{"waves": [["web1"], ["web2"]], "maxFailures": 1, "pause": "30s"}"#)
        #expect(spec.rollout == RolloutSpec(waves: [["web1"], ["web2"]], maxFailures: 1, pause: .seconds(30)))
        // Agents no wave names form a last wave; a filter drops agents and empty waves.
        #expect(spec.rollout?.plan(agents: ["web1", "web2", "web3"]) == [["web1"], ["web2"], ["web3"]])
        #expect(spec.rollout?.plan(agents: ["web2", "web3"]) == [["web2"], ["web3"]])
        let cases: [(String, String)] = [
            (
                #"{"waves": [["web1"], ["web9"]]}"#,
                #"deploy.json: rollout.waves[1][0]: "web9" is not an agent of this deploy.json"#
            ),
            (
                #"{"waves": [["web1"], ["web2", "web1"]]}"#,
                #"deploy.json: rollout.waves[1][1]: "web1" is already in rollout.waves[0]"#
            ),
            (#"{"waves": [["web1"]], "pause": "soon"}"#, #"deploy.json: rollout.pause: "soon" is not a duration"#),
            (#"{"waves": [["web1"]], "pause": "-5s"}"#, #"deploy.json: rollout.pause: "-5s" is not a duration"#),
            (
                #"{"waves": [["web1"]], "maxFailures": -1}"#,
                "deploy.json: rollout.maxFailures is -1; it must be 0 or more"
            ),
            (#"{"waves": [["web1"]], "maxFailures": 1.5}"#, "deploy.json: rollout.maxFailures must be a whole number"),
            (#"{"waves": [[]]}"#, "deploy.json: rollout.waves[0] is empty"),
            (#"{"waves": []}"#, "deploy.json: rollout.waves is empty"),
            (#"{"waves": [["web1"]], "speed": 2}"#, #"deploy.json: rollout: unknown field "speed""#),
        ]
        for (rollout, message) in cases {
            #expect(throws: DeploySpecError.self, "\(rollout)") { try parse(rollout) }
            do {
                _ = try parse(rollout)
            } catch {
                #expect(error.description.hasPrefix(message), "\(error.description)")
            }
        }
    }
}
