import CapstanModel
import CapstanStorage
import Foundation
import NixCore
import Synchronization
import TestSupport
import Testing

@Suite("Agents, deployments and their logs on SQLite and PostgreSQL")
struct DeploymentStorageTests {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000.123)

    @Test(arguments: DatabaseBackend.allCases)
    func agentsAreUniqueByNameInTheirWorkspace(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let own = try await Sample.workspace(store)
            let other = try await Sample.workspace(store)
            let cache = Sample.cache(workspaceID: own.id)
            try await store.insertCache(cache)
            let web = Sample.agent(workspaceID: own.id, name: "web", cacheID: cache.id)
            let db = Sample.agent(workspaceID: own.id, name: "db")
            let otherWeb = Sample.agent(workspaceID: other.id, name: "web")
            try await store.insertAgent(web)
            try await store.insertAgent(db)
            try await store.insertAgent(otherWeb)

            #expect(try await store.agent(id: web.id) == web)
            #expect(try await store.agent(id: "missing") == nil)
            #expect(try await store.agent(workspaceID: other.id, name: "web") == otherWeb)
            #expect(try await store.agent(workspaceID: other.id, name: "db") == nil)
            #expect(try await store.agents(workspaceID: own.id) == [db, web])
            await #expect(throws: StorageError.duplicate(what: "agent", name: "web")) {
                try await store.insertAgent(Sample.agent(workspaceID: own.id, name: "web"))
            }

            let seen = Self.t0.addingTimeInterval(60)
            try await store.recordAgentSeen(
                id: web.id, system: "x86_64-linux", version: "1.0.0", currentStorePath: .named("aaa-system"),
                at: seen)
            var expected = web
            expected.system = "x86_64-linux"
            expected.version = "1.0.0"
            expected.currentStorePath = .named("aaa-system")
            expected.lastSeen = seen
            #expect(try await store.agent(id: web.id) == expected)

            // An agent that does not know its profile yet keeps the path it reported before.
            let later = seen.addingTimeInterval(5)
            try await store.recordAgentSeen(
                id: web.id, system: "aarch64-linux", version: "1.0.1", currentStorePath: nil, at: later)
            expected.system = "aarch64-linux"
            expected.version = "1.0.1"
            expected.lastSeen = later
            #expect(try await store.agent(id: web.id) == expected)

            try await store.setAgentCurrentStorePath(id: web.id, storePath: .named("bbb-system"))
            expected.currentStorePath = .named("bbb-system")
            #expect(try await store.agent(id: web.id) == expected)

            await #expect(throws: StorageError.notFound(what: "agent", key: "missing")) {
                try await store.recordAgentSeen(
                    id: "missing", system: nil, version: nil, currentStorePath: nil, at: later)
            }
            await #expect(throws: StorageError.notFound(what: "agent", key: "missing")) {
                try await store.setAgentCurrentStorePath(id: "missing", storePath: nil)
            }

            // Deleting its cache leaves the agent, without a cache.
            try await store.database.transaction { db in
                try await db.raw("DELETE FROM caches WHERE id = \(bind: cache.id)").run()
            }
            expected.cacheID = nil
            #expect(try await store.agent(id: web.id) == expected)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func agentsSeenTogetherAreRecordedInOneWrite(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let agents = (0..<1_002).map { Sample.agent(workspaceID: workspace.id, name: "a\($0)", id: "agent-\($0)") }
            for agent in agents { try await store.insertAgent(agent) }
            let seen = Self.t0.addingTimeInterval(90)
            // Three statements' worth of agents, one not connected, and an ID that is not an agent.
            try await store.recordAgentsSeen(ids: agents.dropLast().map(\.id) + ["missing"], at: seen)
            for agent in agents.dropLast() {
                #expect(try await store.agent(id: agent.id)?.lastSeen == seen.roundedToStoredPrecision)
            }
            #expect(try await store.agent(id: agents.last!.id)?.lastSeen == agents.last!.lastSeen)
            try await store.recordAgentsSeen(ids: [], at: seen)
        }
    }

    @Test(.timeLimit(.minutes(10))) func onPostgresTheHeartbeatSkipsAgentsAnotherTransactionHolds() async throws {
        try await StoreFixture.withStore(.postgres) { store in
            let workspace = try await Sample.workspace(store)
            let held = Sample.agent(workspaceID: workspace.id, name: "held", id: "agent-held")
            let free = Sample.agent(workspaceID: workspace.id, name: "free", id: "agent-free")
            try await store.insertAgent(held)
            try await store.insertAgent(free)
            let seen = Self.t0.addingTimeInterval(90)
            // An activation holds its agents' rows until it commits; the heartbeat does not wait for it.
            try await store.database.transaction { db in
                try await db.raw("SELECT id FROM agents WHERE id = \(bind: held.id) FOR UPDATE").run()
                try await store.recordAgentsSeen(ids: [held.id, free.id], at: seen)
            }
            #expect(try await store.agent(id: free.id)?.lastSeen == seen.roundedToStoredPrecision)
            #expect(try await store.agent(id: held.id)?.lastSeen == held.lastSeen)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func deploymentsAreNumberedPerAgentAndSupersedePendingOnes(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let a = Sample.agent(workspaceID: workspace.id, name: "a", id: "agent-a")
            let b = Sample.agent(workspaceID: workspace.id, name: "b", id: "agent-b")
            try await store.insertAgent(a)
            try await store.insertAgent(b)

            let first = try await store.createDeployments(
                workspaceID: workspace.id, activationID: "act-1", createdBy: "ci",
                requests: [
                    DeploymentRequest(agentID: b.id, storePath: .named("b1-system")),
                    DeploymentRequest(
                        agentID: a.id, storePath: .named("a1-system"),
                        rollbackScript: ["x86_64-linux": .named("c1-check")]),
                ], at: Self.t0)
            #expect(first.superseded == [])
            #expect(first.created.map(\.agentID) == [b.id, a.id])
            #expect(first.created.map(\.index) == [1, 1])
            let a1 = first.created[1]
            let b1 = first.created[0]
            #expect(
                a1
                    == DeploymentRecord(
                        id: a1.id, workspaceID: workspace.id, agentID: a.id, index: 1,
                        storePath: .named("a1-system"), rollbackScript: ["x86_64-linux": .named("c1-check")],
                        status: .pending,
                        createdAt: Self.t0.roundedToStoredPrecision, createdBy: "ci", activationID: "act-1"))
            #expect(try await store.deployment(id: a1.id) == a1)

            let t1 = Self.t0.addingTimeInterval(10)
            let second = try await store.createDeployments(
                workspaceID: workspace.id, activationID: "act-2", createdBy: nil,
                requests: [DeploymentRequest(agentID: a.id, storePath: .named("a2-system"))], at: t1)
            let a2 = try #require(second.created.first)
            #expect(a2.index == 2)
            #expect(a2.status == .pending)
            var cancelledA1 = a1
            cancelledA1.status = .cancelled
            cancelledA1.reason = "superseded by deployment #2"
            cancelledA1.finishedAt = t1.roundedToStoredPrecision
            #expect(second.superseded == [cancelledA1])
            #expect(try await store.deployment(id: a1.id) == cancelledA1)
            #expect(try await store.deployment(id: b1.id) == b1)

            #expect(try await store.newestPendingDeployment(agentID: a.id) == a2)
            #expect(try await store.newestPendingDeployment(agentID: b.id) == b1)
            #expect(try await store.deployments(agentID: a.id) == [cancelledA1, a2])
            #expect(try await store.deployments(agentID: a.id, status: .pending) == [a2])
            #expect(try await store.deployments(workspaceID: workspace.id) == [a2, cancelledA1, b1])
            #expect(try await store.deployments(workspaceID: workspace.id, limit: 1) == [a2])
            #expect(try await store.deployments(workspaceID: workspace.id, agentID: b.id) == [b1])
            #expect(try await store.deployments(workspaceID: workspace.id, status: .cancelled) == [cancelledA1])
            #expect(try await store.deployments(workspaceID: "other") == [])

            // A deployment already running is not superseded: the agent finishes it first.
            let t2 = t1.addingTimeInterval(10)
            let running = try #require(
                try await store.transitionDeployment(id: a2.id, from: [.pending], to: .inProgress, at: t2))
            let third = try await store.createDeployments(
                workspaceID: workspace.id, activationID: "act-3", createdBy: nil,
                requests: [DeploymentRequest(agentID: a.id, storePath: .named("a3-system"))], at: t2)
            #expect(third.superseded == [])
            #expect(third.created.map(\.index) == [3])
            #expect(try await store.deployment(id: a2.id) == running)
            #expect(try await store.deployments(agentID: a.id).map(\.status) == [.cancelled, .inProgress, .pending])

            #expect(
                try await store.createDeployments(
                    workspaceID: workspace.id, activationID: nil, createdBy: nil, requests: [], at: t2)
                    == DeploymentBatch(created: [], superseded: []))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aBatchWithAnUnknownAgentCreatesNothing(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let other = try await Sample.workspace(store)
            let a = Sample.agent(workspaceID: workspace.id, name: "a")
            let foreign = Sample.agent(workspaceID: other.id, name: "foreign")
            try await store.insertAgent(a)
            try await store.insertAgent(foreign)
            let first = try await store.createDeployments(
                workspaceID: workspace.id, activationID: "act-1", createdBy: nil,
                requests: [DeploymentRequest(agentID: a.id, storePath: .named("a1"))], at: Self.t0)

            await #expect(throws: StorageError.notFound(what: "agent", key: "missing")) {
                try await store.createDeployments(
                    workspaceID: workspace.id, activationID: "act-2", createdBy: nil,
                    requests: [
                        DeploymentRequest(agentID: a.id, storePath: .named("a2")),
                        DeploymentRequest(agentID: "missing", storePath: .named("m1")),
                    ], at: Self.t0)
            }
            // Another workspace's agent is as unknown as one that does not exist.
            await #expect(throws: StorageError.notFound(what: "agent", key: foreign.id)) {
                try await store.createDeployments(
                    workspaceID: workspace.id, activationID: "act-3", createdBy: nil,
                    requests: [
                        DeploymentRequest(agentID: a.id, storePath: .named("a3")),
                        DeploymentRequest(agentID: foreign.id, storePath: .named("f1")),
                    ], at: Self.t0)
            }
            #expect(try await store.deployments(agentID: a.id) == first.created)
            #expect(try await store.deployments(agentID: foreign.id) == [])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func concurrentActivationsForOneAgentNumberConsecutively(backend: DatabaseBackend) async throws {
        // Two stores on one database stand for two server replicas.
        try await StoreFixture.withReplicas(backend) { replicas in
            let workspace = try await Sample.workspace(replicas[0])
            let a = Sample.agent(workspaceID: workspace.id, name: "a", id: "agent-a")
            let b = Sample.agent(workspaceID: workspace.id, name: "b", id: "agent-b")
            try await replicas[0].insertAgent(a)
            try await replicas[0].insertAgent(b)

            let activations = 10
            let batches = try await withThrowingTaskGroup(of: DeploymentBatch.self) { group in
                for number in 0..<activations {
                    let store = replicas[number % 2]
                    // Half the activations name the agents in the other order: locks must not deadlock.
                    let agents = number % 3 == 0 ? [b, a] : [a, b]
                    group.addTask {
                        try await store.createDeployments(
                            workspaceID: workspace.id, activationID: "act-\(number)", createdBy: nil,
                            requests: agents.map {
                                DeploymentRequest(agentID: $0.id, storePath: .named("\(number)"))
                            },
                            at: Self.t0.addingTimeInterval(Double(number)))
                    }
                }
                return try await group.reduce(into: [DeploymentBatch]()) { $0.append($1) }
            }
            for agent in [a, b] {
                let deployments = try await replicas[1].deployments(agentID: agent.id)
                #expect(deployments.map(\.index) == Array(1...activations))
                #expect(deployments.filter { $0.status == .pending }.map(\.index) == [activations])
                #expect(deployments.dropLast().allSatisfy { $0.status == .cancelled })
                for deployment in deployments.dropLast() {
                    #expect(deployment.reason == "superseded by deployment #\(deployment.index + 1)")
                }
                let superseded = batches.flatMap(\.superseded).filter { $0.agentID == agent.id }
                #expect(superseded.map(\.index).sorted() == Array(1..<activations))
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func activationSettingsAndCheckResultsAreKept(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (workspace, agent) = try await Sample.workspaceWithAgent(store)
            let settings = ActivationSettings(checks: [.noFailedUnits], grace: .seconds(60))
            let batch = try await store.createDeployments(
                workspaceID: workspace.id, activationID: nil, createdBy: nil,
                requests: [
                    DeploymentRequest(
                        agentID: agent.id, storePath: .known("/nix/store/\(Sample.hashPart())-system"),
                        activation: settings)
                ], at: Self.t0)
            let created = try #require(batch.created.first)
            #expect(created.activation == settings)
            #expect(created.checkResults == nil)
            #expect(try await store.newestPendingDeployment(agentID: agent.id)?.activation == settings)
            let results = [CheckResult(check: "systemd no-failed-units", passed: false, attempts: 2, output: [])]
            let cancelled = try #require(
                try await store.transitionDeployment(
                    id: created.id, from: [.pending, .inProgress], to: .cancelled, rolledBack: true,
                    checkResults: results, at: Self.t0.addingTimeInterval(1)))
            #expect(cancelled.checkResults == results)
            #expect(try await store.deployment(id: created.id)?.checkResults == results)
            #expect(try await store.deployment(id: created.id)?.activation == settings)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func transitionsAreCompareAndSet(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (workspace, agent) = try await Sample.workspaceWithAgent(store)
            let deployment = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)

            let started = Self.t0.addingTimeInterval(1)
            let running = try #require(
                try await store.transitionDeployment(
                    id: deployment.id, from: [.pending], to: .inProgress, at: started))
            #expect(running.status == .inProgress)
            #expect(running.startedAt == started.roundedToStoredPrecision)
            #expect(running.finishedAt == nil)
            #expect(
                try await store.transitionDeployment(id: deployment.id, from: [.pending], to: .inProgress, at: started)
                    == nil)
            #expect(try await store.deployment(id: deployment.id) == running)

            try await store.setClosureSize(deploymentID: deployment.id, size: 5_000_000_000)
            let finished = Self.t0.addingTimeInterval(2)
            let failed = try #require(
                try await store.transitionDeployment(
                    id: deployment.id, from: [.pending, .inProgress], to: .failed, reason: "activation failed",
                    rolledBack: true, at: finished))
            var expected = running
            expected.status = .failed
            expected.reason = "activation failed"
            expected.rolledBack = true
            expected.closureSize = 5_000_000_000
            expected.finishedAt = finished.roundedToStoredPrecision
            #expect(failed == expected)
            #expect(try await store.deployment(id: deployment.id) == expected)

            #expect(
                try await store.transitionDeployment(id: "missing", from: [.pending], to: .cancelled, at: finished)
                    == nil)
            #expect(
                try await store.transitionDeployment(id: deployment.id, from: [], to: .cancelled, at: finished) == nil)
            await #expect(throws: StorageError.notFound(what: "deployment", key: "missing")) {
                try await store.setClosureSize(deploymentID: "missing", size: 1)
            }

            // Cancelling a pending deployment finishes it without starting it.
            let next = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            let cancelled = try #require(
                try await store.transitionDeployment(
                    id: next.id, from: [.pending], to: .cancelled, reason: "cancelled by admin", at: finished))
            #expect(cancelled.startedAt == nil)
            #expect(cancelled.finishedAt == finished.roundedToStoredPrecision)
            #expect(cancelled.rolledBack == false)

            // Of several replicas racing to start one deployment, one wins.
            let contested = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await store.transitionDeployment(
                            id: contested.id, from: [.pending], to: .inProgress, at: finished) != nil
                    }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(winners == 1)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func anOutcomeItsFinalLineAndTheAgentsPathAreWrittenTogetherOrNotAtAll(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (workspace, agent) = try await Sample.workspaceWithAgent(store)
            let deployment = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            let started = Self.t0.addingTimeInterval(1)
            let running = try #require(
                try await store.transitionDeployment(
                    id: deployment.id, from: [.pending], to: .inProgress, closureSize: 42, at: started))
            #expect(running.closureSize == 42)
            try await store.appendLogLines(deploymentID: deployment.id, lines: [LogLine(time: started, line: "built")])

            // A report that loses the compare-and-set leaves the log and the agent as they were.
            let finished = Self.t0.addingTimeInterval(2)
            let finalLine = LogLine(time: finished, line: "Successfully activated the deployment.")
            let lost = try await store.transitionDeployment(
                id: deployment.id, from: [.pending], to: .succeeded, finalLine: finalLine, agentRunsIt: true,
                at: finished)
            #expect(lost == nil)
            let lines: [String] = try await store.logLines(deploymentID: deployment.id, after: 0).map(\.line.line)
            #expect(lines == ["built"])
            let pathBefore: StorePath? = try await store.agent(id: agent.id)?.currentStorePath
            #expect(pathBefore == agent.currentStorePath)

            // The winning one ends the log and makes the deployment's path the agent's, in one write.
            let won = try await store.transitionDeployment(
                id: deployment.id, from: [.inProgress], to: .succeeded, finalLine: finalLine, agentRunsIt: true,
                at: finished)
            let succeeded = try #require(won)
            #expect(succeeded.status == .succeeded)
            #expect(succeeded.closureSize == 42)
            let linesAfter: [String] = try await store.logLines(deploymentID: deployment.id, after: 0).map(\.line.line)
            #expect(linesAfter == ["built", "Successfully activated the deployment."])
            let pathAfter: StorePath? = try await store.agent(id: agent.id)?.currentStorePath
            #expect(pathAfter == deployment.storePath)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func lastSucceededDeploymentIsTheRollbackTarget(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (workspace, agent) = try await Sample.workspaceWithAgent(store)
            let other = Sample.agent(workspaceID: workspace.id, name: "other")
            try await store.insertAgent(other)
            var created: [DeploymentRecord] = []
            for outcome in [DeploymentStatus.succeeded, .failed, .succeeded] {
                let deployment = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
                _ = try await store.transitionDeployment(
                    id: deployment.id, from: [.pending], to: .inProgress, at: Self.t0)
                created.append(
                    try #require(
                        try await store.transitionDeployment(
                            id: deployment.id, from: [.inProgress], to: outcome, at: Self.t0)))
            }
            _ = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)

            #expect(try await store.lastSucceededDeployment(agentID: agent.id) == created[2])
            #expect(try await store.lastSucceededDeployment(agentID: agent.id, before: 4) == created[2])
            #expect(try await store.lastSucceededDeployment(agentID: agent.id, before: 3) == created[0])
            #expect(try await store.lastSucceededDeployment(agentID: agent.id, before: 1) == nil)
            #expect(try await store.lastSucceededDeployment(agentID: other.id) == nil)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func logLinesAreNumberedAndReadAfterASequenceNumber(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (workspace, agent) = try await Sample.workspaceWithAgent(store)
            let deployment = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            let lines = (0..<5).map {
                LogLine(time: Self.t0.addingTimeInterval(Double($0) * 0.001), line: "line \($0)")
            }

            #expect(try await store.appendLogLines(deploymentID: deployment.id, lines: Array(lines[0..<3])) == 3)
            #expect(try await store.appendLogLines(deploymentID: deployment.id, lines: Array(lines[3...])) == 5)
            #expect(try await store.appendLogLines(deploymentID: deployment.id, lines: []) == 5)

            let all = try await store.logLines(deploymentID: deployment.id, after: 0)
            #expect(all.map(\.seq) == [1, 2, 3, 4, 5])
            #expect(all.map(\.line) == lines.map { LogLine(time: $0.time.roundedToStoredPrecision, line: $0.line) })
            #expect(try await store.logLines(deploymentID: deployment.id, after: 3).map(\.seq) == [4, 5])
            #expect(try await store.logLines(deploymentID: deployment.id, after: 1, limit: 2).map(\.seq) == [2, 3])
            #expect(try await store.logLines(deploymentID: deployment.id, after: 5) == [])

            // More lines than one INSERT carries.
            let many = (0..<1_200).map { LogLine(time: Self.t0, line: "bulk \($0) ✓") }
            #expect(try await store.appendLogLines(deploymentID: deployment.id, lines: many) == 1_205)
            let bulk = try await store.logLines(deploymentID: deployment.id, after: 5, limit: 5_000)
            #expect(bulk.map(\.seq) == Array(6...1_205))
            #expect(bulk.last?.line.line == "bulk 1199 ✓")

            await #expect(throws: StorageError.notFound(what: "deployment", key: "missing")) {
                try await store.appendLogLines(deploymentID: "missing", lines: lines)
            }

            // Writers racing on one log still get distinct, gapless numbers.
            let raced = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            let lasts = try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<5 {
                    group.addTask {
                        try await store.appendLogLines(
                            deploymentID: raced.id,
                            lines: (0..<20).map { LogLine(time: Self.t0, line: "writer \(writer) line \($0)") })
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(lasts.sorted() == [20, 40, 60, 80, 100])
            #expect(
                try await store.logLines(deploymentID: raced.id, after: 0, limit: 1_000).map(\.seq)
                    == Array(1...100))

            // Logs go with their deployment.
            try await store.database.transaction { db in
                try await db.raw("DELETE FROM deployments WHERE id = \(bind: raced.id)").run()
            }
            #expect(try await store.logLines(deploymentID: raced.id, after: 0) == [])
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func deploymentCountsCoverEveryStatus(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (workspace, agent) = try await Sample.workspaceWithAgent(store)
            let (otherWorkspace, otherAgent) = try await Sample.workspaceWithAgent(store)
            let zero = Dictionary(uniqueKeysWithValues: DeploymentStatus.allCases.map { ($0, 0) })
            #expect(try await store.deploymentCounts(workspaceID: workspace.id) == zero)

            let first = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            _ = try await store.transitionDeployment(id: first.id, from: [.pending], to: .inProgress, at: Self.t0)
            _ = try await store.transitionDeployment(id: first.id, from: [.inProgress], to: .succeeded, at: Self.t0)
            _ = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            _ = try await Sample.deploy(store, workspaceID: workspace.id, agentID: agent.id)
            _ = try await Sample.deploy(store, workspaceID: otherWorkspace.id, agentID: otherAgent.id)

            var expected = zero
            expected[.succeeded] = 1
            expected[.cancelled] = 1
            expected[.pending] = 1
            #expect(try await store.deploymentCounts(workspaceID: workspace.id) == expected)
            expected[.pending] = 2
            #expect(try await store.deploymentCounts(workspaceID: nil) == expected)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func manyAgentsAreLookedUpAndDeployedTogether(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await Sample.workspace(store)
            let other = try await Sample.workspace(store)
            // More than one statement's worth (200 per statement), so the chunks are exercised too.
            var agents: [AgentRecord] = []
            for i in 0..<450 {
                let agent = Sample.agent(workspaceID: workspace.id, name: String(format: "node-%03d", i))
                try await store.insertAgent(agent)
                agents.append(agent)
            }
            let stranger = Sample.agent(workspaceID: other.id, name: "node-000")
            try await store.insertAgent(stranger)

            let byName = try await store.agents(workspaceID: workspace.id, names: ["node-001", "node-449", "missing"])
            #expect(byName == ["node-001": agents[1], "node-449": agents[449]])
            let byID = try await store.agents(ids: agents.map(\.id) + ["missing"])
            #expect(byID.count == 450 && byID[agents[7].id] == agents[7])
            #expect(try await store.newestPendingDeployments(agentIDs: agents.map(\.id)) == [:])

            let first = try await store.createDeployments(
                workspaceID: workspace.id, activationID: "act-1", createdBy: "ci",
                requests: agents.reversed().map {
                    DeploymentRequest(agentID: $0.id, storePath: .named("1-\($0.name)"))
                },
                at: Self.t0)
            #expect(first.superseded == [])
            #expect(first.created.map(\.agentID) == agents.reversed().map(\.id))
            #expect(first.created.allSatisfy { $0.index == 1 && $0.status == .pending && $0.activationID == "act-1" })
            // Agent 0 takes its deployment; the others' stay pending and are superseded next.
            _ = try await store.transitionDeployment(
                id: first.created.last!.id, from: [.pending], to: .inProgress, at: Self.t0)
            let t1 = Self.t0.addingTimeInterval(10)
            let second = try await store.createDeployments(
                workspaceID: workspace.id, activationID: "act-2", createdBy: nil,
                // Every other one with a rollback script: rows with and without one are written together.
                requests: agents.enumerated().map { i, agent in
                    DeploymentRequest(
                        agentID: agent.id, storePath: .named("2-\(agent.name)"),
                        rollbackScript: i.isMultiple(of: 2) ? ["x86_64-linux": .named("check-\(i)")] : nil)
                }, at: t1
            )
            #expect(second.created[2].rollbackScript == ["x86_64-linux": .named("check-2")])
            #expect(second.created[3].rollbackScript == nil)
            #expect(second.created.map(\.index) == Array(repeating: 2, count: 450))
            #expect(second.superseded.map(\.agentID) == agents.dropFirst().map(\.id))
            #expect(
                second.superseded.allSatisfy {
                    $0.status == .cancelled && $0.reason == "superseded by deployment #2"
                        && $0.finishedAt == t1.roundedToStoredPrecision
                })
            for agent in agents.prefix(3) + agents.suffix(3) {
                #expect(
                    try await store.deployments(agentID: agent.id).map(\.status)
                        == [agent.id == agents[0].id ? .inProgress : .cancelled, .pending])
            }
            let pending = try await store.newestPendingDeployments(agentIDs: agents.map(\.id) + [stranger.id])
            #expect(pending.count == 450)
            for agent in agents {
                #expect(pending[agent.id] == second.created.first { $0.agentID == agent.id })
            }
            let byDeployment = try await store.deployments(
                ids: (first.created + second.created).map(\.id) + ["missing"])
            #expect(byDeployment.count == 900)
            #expect(byDeployment[second.created[7].id] == second.created[7])
            #expect(byDeployment[first.created[7].id]?.status == .cancelled)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func notificationsRefuseBadChannelsAndLargePayloads(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            #expect(store.supportsNotifications == (backend == .postgres))
            await #expect {
                try await store.notify(channel: "bad\"name", payload: "x")
            } throws: { error in
                (error as? StorageError)?.description.contains("bad\"name") == true
            }
            await #expect {
                try await store.notify(channel: "deployments", payload: String(repeating: "x", count: 8_000))
            } throws: { error in
                (error as? StorageError)?.description.contains("8000 bytes") == true
            }
            try await store.notify(
                channel: "deployments",
                payload: String(repeating: "x", count: CapstanStore.maximumNotificationPayloadBytes))
            await #expect(throws: StorageError.self) {
                for try await _ in store.listen(channel: "no spaces") {}
            }
        }
    }

    @Test func sqliteListenersHearNothingAndEndWithTheirConsumerOrTheStore() async throws {
        try await StoreFixture.withReplicas(.sqlite, count: 1) { stores in
            let store = stores[0]
            let received = Received()
            let first = store.listen(channel: "deployments")
            let second = store.listen(channel: "deployments")
            let cancelled = Task {
                for try await payload in first { received.append(payload) }
            }
            let untilShutdown = Task {
                for try await payload in second { received.append(payload) }
            }
            try await store.notify(channel: "deployments", payload: "hello")
            try await Task.sleep(for: .milliseconds(200))
            cancelled.cancel()
            try await cancelled.value
            try await store.shutdown()
            try await untilShutdown.value
            #expect(received.all == [])
            // A stream asked for after shutdown ends at once.
            for try await _ in store.listen(channel: "deployments") {}
        }
    }

    @Test func postgresNotificationsSentTogetherArriveInOrder() async throws {
        try await StoreFixture.withReplicas(.postgres) { stores in
            let (sender, listener) = (stores[0], stores[1])
            let received = Received()
            let consumer = Task {
                for try await payload in listener.listen(channel: "capstan_batch") { received.append(payload) }
            }
            defer { consumer.cancel() }
            var heard = false
            for attempt in 0..<300 where !heard {
                try await sender.notify(channel: "capstan_batch", payloads: ["ping-\(attempt)"])
                try await Task.sleep(for: .milliseconds(100))
                heard = !received.all.isEmpty
            }
            #expect(heard)
            // 5,000 payloads, sent by one statement, arrive in their order.
            let batch = (0..<5000).map { "event-\($0)" }
            try await sender.notify(channel: "capstan_batch", payloads: batch)
            for _ in 0..<100 where received.all.filter({ $0.hasPrefix("event-") }).count < batch.count {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(received.all.filter { $0.hasPrefix("event-") } == batch)
            await #expect(throws: StorageError.self) {
                try await sender.notify(
                    channel: "capstan_batch", payloads: ["ok", String(repeating: "x", count: 8_000)])
            }
        }
    }

    @Test func postgresNotificationsReachAnotherReplicaAndSurviveAKilledConnection() async throws {
        try await StoreFixture.withReplicas(.postgres) { stores in
            let (sender, listener) = (stores[0], stores[1])
            let received = Received()
            let consumer = Task {
                for try await payload in listener.listen(channel: "capstan_deployments") {
                    received.append(payload)
                }
            }

            /// Notifies until the listener hears one: it may still be connecting, and what is sent meanwhile is lost.
            func notifyUntilHeard(_ prefix: String) async throws -> Bool {
                for attempt in 0..<300 {
                    try await sender.notify(channel: "capstan_deployments", payload: "\(prefix)-\(attempt)")
                    try await Task.sleep(for: .milliseconds(100))
                    if received.all.contains(where: { $0.hasPrefix(prefix + "-") }) { return true }
                }
                return false
            }

            #expect(try await notifyUntilHeard("first"))
            let listeningPIDs = """
                SELECT pid FROM pg_stat_activity
                WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()
                """
            let before = try await sender.database.sql.raw("\(unsafeRaw: listeningPIDs)").all(
                decodingColumn: "pid", as: Int.self)
            #expect(before.count == 1)
            let killed = try await sender.database.sql.raw(
                "SELECT pg_terminate_backend(pid) AS killed FROM (\(unsafeRaw: listeningPIDs)) AS listening"
            ).all(decodingColumn: "killed", as: Bool.self)
            #expect(killed == [true])

            #expect(try await notifyUntilHeard("after-kill"))
            let after = try await sender.database.sql.raw("\(unsafeRaw: listeningPIDs)").all(
                decodingColumn: "pid", as: Int.self)
            #expect(after.count == 1)
            #expect(Set(after).isDisjoint(with: before))

            consumer.cancel()
            try await consumer.value
        }
    }
}

/// Payloads a listening task collected, read by the test while the task runs.
final class Received: Sendable {
    private let payloads = Mutex<[String]>([])
    func append(_ payload: String) { payloads.withLock { $0.append(payload) } }
    var all: [String] { payloads.withLock { $0 } }
}

extension Sample {
    static func agent(
        workspaceID: String, name: String = "agent-\(UUID().uuidString.prefix(8).lowercased())",
        id: String = UUID().uuidString.lowercased(), cacheID: String? = nil
    ) -> AgentRecord {
        AgentRecord(
            id: id, workspaceID: workspaceID, name: name, cacheID: cacheID,
            createdAt: Date().roundedToStoredPrecision)
    }

    static func workspaceWithAgent(_ store: CapstanStore) async throws -> (WorkspaceRecord, AgentRecord) {
        let workspace = try await Sample.workspace(store)
        let agent = Sample.agent(workspaceID: workspace.id)
        try await store.insertAgent(agent)
        return (workspace, agent)
    }

    /// One activation for one agent, superseding its pending deployments.
    static func deploy(_ store: CapstanStore, workspaceID: String, agentID: String) async throws -> DeploymentRecord {
        let batch = try await store.createDeployments(
            workspaceID: workspaceID, activationID: nil, createdBy: nil,
            requests: [
                DeploymentRequest(agentID: agentID, storePath: .known("/nix/store/\(Sample.hashPart())-system"))
            ],
            at: DeploymentStorageTests.t0)
        return try #require(batch.created.first)
    }
}
