import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NixCore
import Testing

/// The rules of deployments, in process, on both databases: the state machine, superseding,
/// rollback targets, and that orders reach agents only through the dispatcher.
@Suite("Deployment rules")
struct DeployRulesTests {
    static let pathA = StorePath.known("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system-a")
    static let pathB = StorePath.known("/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-system-b")
    static let pathC = StorePath.known("/nix/store/cccccccccccccccccccccccccccccccc-system-c")

    /// Activates `path` for `agent` and returns the deployment's id.
    static func activate(_ services: Services, _ agent: String, _ path: StorePath) async throws -> String {
        let response = try await services.deploy.activate(
            DeploySpec(agents: [agent: path]), by: try await services.principal(.activate))
        return try #require(response.agents[agent]?.id)
    }

    static func succeed(_ services: Services, _ agent: AgentRecord, _ id: String, _ path: StorePath) async throws {
        #expect(try await services.deploy.agentStarted(agent, deploymentID: id, closureSize: 10))
        try await services.deploy.agentFinished(
            agent,
            outcome: DeploymentOutcome(id: id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: path))
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aDeploymentGoesFromPendingThroughInProgressToItsOutcome(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let reader = try await services.principal(.activate)
            let id = try await Self.activate(services, "web1", Self.pathA)
            #expect(try await services.deploy.deployment(id: id, by: reader).status == .pending)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: id, closureSize: 42))
            #expect(try await services.deploy.deployment(id: id, by: reader).status == .inProgress)
            try await services.deploy.agentLogged(
                agent, deploymentID: id, lines: [LogLine(time: Date(), line: "switching")])
            try await services.deploy.agentFinished(
                agent,
                outcome: DeploymentOutcome(
                    id: id, succeeded: false, reason: "activation failed", rolledBack: true, currentStorePath: nil))
            let info = try await services.deploy.deployment(id: id, by: reader)
            #expect(info.status == .failed)
            #expect(info.rolledBack)
            #expect(info.closureSize == 42)
            // Said once: the outcome line ends the log.
            let lines = try await services.deploy.logPage(id: id, after: 0, by: reader).lines.map(\.line)
            #expect(lines.first == "switching")
            #expect(lines.last?.hasPrefix("Failed to activate the deployment.") == true)
            // A second report of the outcome changes nothing.
            try await services.deploy.agentFinished(
                agent,
                outcome: DeploymentOutcome(
                    id: id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: nil))
            #expect(try await services.deploy.deployment(id: id, by: reader).status == .failed)
            // A finished deployment is not started again.
            #expect(try await !services.deploy.agentStarted(agent, deploymentID: id, closureSize: nil))
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aNewerPendingDeploymentSupersedesTheOlderOne(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            await services.outbox.connect(agent.id)
            let reader = try await services.principal(.activate)
            let first = try await Self.activate(services, "web1", Self.pathA)
            let second = try await Self.activate(services, "web1", Self.pathB)
            #expect(try await services.deploy.deployment(id: first, by: reader).status == .cancelled)
            #expect(try await services.deploy.deployment(id: second, by: reader).status == .pending)
            // The dispatcher, fed by the event bus, tells the agent: the first, its cancellation, the second.
            await services.dispatcher.dispatch([
                .deploymentCreated(agentID: agent.id, deploymentID: first),
                .deploymentCancelled(agentID: agent.id, deploymentID: first),
                .deploymentCreated(agentID: agent.id, deploymentID: second),
            ])
            let messages = await services.outbox.messages(to: agent.id)
            // The first was already overtaken when the batch was read: only its cancel and the second go out.
            #expect(messages.count == 2)
            #expect(messages.first == .cancel(id: first))
            guard case .deploy(let order)? = messages.last else {
                Issue.record("expected a deploy order, got \(messages)")
                return
            }
            #expect(order.id == second)
            #expect(order.storePath == Self.pathB)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func anActivationRecordsOneAuditEventPerDeploymentWithItsAgentAndIndex(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            _ = try await services.addAgent("web1")
            _ = try await services.addAgent("web2")
            let actor = try await services.principal(.activate)
            let first = try await services.deploy.activate(
                DeploySpec(agents: ["web1": Self.pathA, "web2": Self.pathB]), by: actor)
            let second = try await services.deploy.activate(DeploySpec(agents: ["web1": Self.pathC]), by: actor)
            let events = try await services.store.auditEvents(workspaceID: services.workspace.id).filter {
                $0.action == "deployment.activate"
            }
            let deployments = [first.agents["web1"], first.agents["web2"], second.agents["web1"]].compactMap { $0 }
            #expect(Set(events.compactMap(\.target)) == Set(deployments.map(\.id)))
            #expect(Set(events.compactMap(\.detail)) == ["web1 #1", "web2 #1", "web1 #2"])
            #expect(events.count == 3)
            #expect(Set(events.map(\.id)).count == 3)
            for event in events {
                #expect(UUID(uuidString: event.id) != nil, "\(event.id) is a UUID")
                #expect(event.id == event.id.lowercased())
                #expect(event.actor == "activate token")
                #expect(event.actorTokenID == actor.tokenID)
                #expect(abs(event.time.timeIntervalSinceNow) < 60)
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aReconnectingAgentIsHandedItsNewestPendingDeploymentOnly(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            _ = try await Self.activate(services, "web1", Self.pathA)
            let newest = try await Self.activate(services, "web1", Self.pathB)
            await services.dispatcher.handOver(to: agent.id)
            #expect(await services.outbox.messages(to: agent.id).isEmpty, "not connected: nothing sent")
            await services.outbox.connect(agent.id)
            await services.dispatcher.handOver(to: agent.id)
            let messages = await services.outbox.messages(to: agent.id)
            #expect(messages.count == 1)
            if case .deploy(let order)? = messages.first {
                #expect(order.id == newest)
            } else {
                Issue.record("\(messages)")
            }
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func rollbackTargetsThePreviousDistinctSuccessfulConfiguration(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let actor = try await services.principal(.activate)
            await #expect(throws: ServiceError.self) {
                try await services.deploy.rollback(agentName: "web1", by: actor)
            }
            for path in [Self.pathA, Self.pathB, Self.pathB] {
                let id = try await Self.activate(services, "web1", path)
                try await Self.succeed(services, agent, id, path)
            }
            // B was deployed twice: rolling back goes to A, not to the earlier B.
            let rollback = try await services.deploy.rollback(agentName: "web1", by: actor)
            #expect(rollback.storePath == Self.pathA)
            #expect(rollback.status == .pending)
            let failed = try await Self.activate(services, "web1", Self.pathC)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: failed, closureSize: nil))
            try await services.deploy.agentFinished(
                agent,
                outcome: DeploymentOutcome(
                    id: failed, succeeded: false, reason: "x", rolledBack: true, currentStorePath: nil))
            #expect(try await services.deploy.rollback(agentName: "web1", by: actor).storePath == Self.pathA)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func onlyPendingDeploymentsAreCancelledAndOnlyFinishedOnesRetried(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let actor = try await services.principal(.admin)
            let id = try await Self.activate(services, "web1", Self.pathA)
            await #expect(throws: ServiceError.self) { try await services.deploy.retry(id: id, by: actor) }
            #expect(try await services.deploy.cancel(id: id, by: actor).status == .cancelled)
            #expect(try await !services.deploy.agentStarted(agent, deploymentID: id, closureSize: nil))
            let retried = try await services.deploy.retry(id: id, by: actor)
            #expect(retried.status == .pending)
            #expect(retried.storePath == Self.pathA)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func deployJsonNamingAnUnknownAgentCreatesNothing(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            _ = try await services.addAgent("web1")
            let actor = try await services.principal(.activate)
            let error = await #expect(throws: ServiceError.self) {
                try await services.deploy.activate(
                    DeploySpec(agents: ["web1": Self.pathA, "web9": Self.pathB]), by: actor)
            }
            #expect(error?.message.contains("web9") == true)
            #expect(try await services.deploy.deployments(agentName: nil, status: nil, limit: 10, by: actor).isEmpty)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func agentsActOnlyOnTheirOwnDeploymentsAndOtherWorkspacesSeeNothing(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let web1 = try await services.addAgent("web1")
            let web2 = try await services.addAgent("web2")
            let id = try await Self.activate(services, "web1", Self.pathA)
            let error = await #expect(throws: ServiceError.self) {
                try await services.deploy.agentStarted(web2, deploymentID: id, closureSize: nil)
            }
            #expect(error?.kind == .notFound)
            // web2's token is not web1's: the agent channel names the agent the token belongs to.
            let web2Token = try await services.principal(.agent, agent: "web2")
            #expect(try await services.deploy.agent(authenticatedAs: web2Token).id == web2.id)
            _ = web1
            let stranger = try await services.store.createWorkspace(name: "team-b")
            let strangerAdmin = try await services.principal(.admin, workspace: stranger)
            #expect(
                (await #expect(throws: ServiceError.self) {
                    try await services.deploy.deployment(id: id, by: strangerAdmin)
                })?.kind == .notFound)
            #expect(try await services.deploy.agents(by: strangerAdmin).isEmpty)
            #expect(
                (await #expect(throws: ServiceError.self) {
                    try await services.deploy.activate(DeploySpec(agents: ["web1": Self.pathA]), by: strangerAdmin)
                })?.kind == .badRequest)
        }
    }
}
