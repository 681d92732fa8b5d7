import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NixCore
import Testing

/// What an agent may report: only transitions of the state machine, only its deployment's store
/// path as what it runs, and logs within bounds and only while the deployment runs.
@Suite("Agent reports")
struct AgentReportRulesTests {
    static let path = DeployRulesTests.pathA

    @Test(arguments: DatabaseBackend.allCases)
    func anAgentCannotFinishWhatItNeverStarted(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let reader = try await services.principal(.admin)
            let id = try await DeployRulesTests.activate(services, "web1", Self.path)
            let error = await #expect(throws: ServiceError.self) {
                try await services.deploy.agentFinished(
                    agent,
                    outcome: DeploymentOutcome(
                        id: id, succeeded: true, reason: nil, rolledBack: false,
                        currentStorePath: DeployRulesTests.pathB))
            }
            #expect(error?.kind == .conflict)
            #expect(try await services.deploy.deployment(id: id, by: reader).status == .pending)
            #expect(try await services.store.agent(id: agent.id)?.currentStorePath == nil)
        }
    }

    /// A report answers with what the agent takes next, read as the report is recorded: the newest
    /// deployment activated while it ran, or nothing. Repeating the report changes nothing.
    @Test(arguments: DatabaseBackend.allCases)
    func aReportReturnsTheAgentsNextPendingDeployment(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let other = try await services.addAgent("web2")
            let first = try await DeployRulesTests.activate(services, "web1", Self.path)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: first, closureSize: nil))
            let next = try await DeployRulesTests.activate(services, "web1", DeployRulesTests.pathB)
            let outcome = DeploymentOutcome(
                id: first, succeeded: false, reason: "switch failed", rolledBack: true, currentStorePath: nil)
            // Another agent cannot end it, and is told nothing of web1's deployments.
            await #expect(throws: ServiceError.self) {
                try await services.deploy.agentFinished(other, outcome: outcome)
            }
            let order = try await services.deploy.agentFinished(agent, outcome: outcome)
            #expect(order?.id == next)
            #expect(order?.storePath == DeployRulesTests.pathB)
            let reader = try await services.principal(.admin)
            let recorded = try await services.deploy.deployment(id: first, by: reader)
            #expect(recorded.status == .failed)
            #expect(recorded.rolledBack)
            // The same report again (after a reconnect): nothing changes, and the next order is the same.
            #expect(try await services.deploy.agentFinished(agent, outcome: outcome)?.id == next)
            #expect(try await services.deploy.deployment(id: first, by: reader).reason == recorded.reason)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: next, closureSize: nil))
            let last = try await services.deploy.agentFinished(
                agent,
                outcome: DeploymentOutcome(
                    id: next, succeeded: true, reason: nil, rolledBack: false, currentStorePath: DeployRulesTests.pathB)
            )
            #expect(last == nil)
            #expect(try await services.deploy.deployment(id: next, by: reader).status == .succeeded)
            #expect(try await services.store.agent(id: agent.id)?.currentStorePath == DeployRulesTests.pathB)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func theCurrentPathIsOnlyEverTheDeploymentsStorePath(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let id = try await DeployRulesTests.activate(services, "web1", Self.path)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: id, closureSize: nil))
            try await services.deploy.agentFinished(
                agent,
                outcome: DeploymentOutcome(
                    id: id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: DeployRulesTests.pathC))
            #expect(try await services.store.agent(id: agent.id)?.currentStorePath == Self.path)
            // A hello naming something that is not a store path is not believed.
            let hello = try JSONDecoder.capstan.decode(
                AgentHello.self,
                from: Data(
                    #"{"name": "web1", "version": "1", "system": "x86_64-linux", "currentStorePath": "../../etc/passwd"}"#
                        .utf8))
            #expect(hello.currentStorePath == nil)
            _ = try await services.deploy.agentConnected(try await services.principal(.agent), hello: hello)
            #expect(try await services.store.agent(id: agent.id)?.currentStorePath == Self.path)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func logsAreBoundedAndEndWithTheOutcome(backend: DatabaseBackend) async throws {
        let limits = LogLimits(maxLineBytes: 100, maxLinesPerMessage: 5, maxLinesPerDeployment: 8)
        try await Services.with(backend, logLimits: limits) { services in
            let agent = try await services.addAgent("web1")
            let reader = try await services.principal(.admin)
            let id = try await DeployRulesTests.activate(services, "web1", Self.path)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: id, closureSize: nil))
            let future = Date().addingTimeInterval(10 * 365 * 86400)
            try await services.deploy.agentLogged(
                agent, deploymentID: id,
                lines: [LogLine(time: future, line: String(repeating: "é", count: 200))]
                    + (1...7).map { LogLine(time: Date(), line: "line \($0)") })
            try await services.deploy.agentLogged(
                agent, deploymentID: id, lines: (8...12).map { LogLine(time: Date(), line: "line \($0)") })
            let page = try await services.deploy.logPage(id: id, after: 0, by: reader)
            // One message keeps 5 lines and says the rest was dropped; the deployment keeps 8 and says so.
            #expect(page.total == 9)
            let first = try #require(page.lines.first)
            #expect(first.line.hasSuffix("[line truncated]"))
            #expect(first.line.utf8.count <= 100 + " … [line truncated]".utf8.count)
            #expect(first.time < Date().addingTimeInterval(120), "a date in the future is not kept")
            #expect(page.lines[5].line.contains("3 more lines of one message were dropped"))
            #expect(page.lines.last?.line.hasPrefix("[log truncated") == true)
            try await services.deploy.agentFinished(
                agent,
                outcome: DeploymentOutcome(
                    id: id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: nil))
            // The outcome line is the server's own: it is written even past the cap, and is the last.
            let end = try await services.deploy.logPage(id: id, after: nil, by: reader)
            #expect(end.lines.last?.line == "Successfully activated the deployment.")
            let late = await #expect(throws: ServiceError.self) {
                try await services.deploy.agentLogged(
                    agent, deploymentID: id, lines: [LogLine(time: Date(), line: "late")])
            }
            #expect(late?.kind == .conflict)
            #expect(try await services.deploy.logPage(id: id, after: nil, by: reader).total == end.total)
        }
    }

    /// After a reconnect, only what the agent ran before connecting and no longer mentions is an orphan.
    @Test(arguments: DatabaseBackend.allCases)
    func aDeploymentStartedOverTheNewConnectionIsNoOrphan(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let agent = try await services.addAgent("web1")
            let reader = try await services.principal(.admin)
            let before = try await DeployRulesTests.activate(services, "web1", Self.path)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: before, closureSize: nil))
            try await Task.sleep(for: .milliseconds(20))
            let connectedAt = Date()
            try await Task.sleep(for: .milliseconds(20))
            let after = try await DeployRulesTests.activate(services, "web1", DeployRulesTests.pathB)
            #expect(try await services.deploy.agentStarted(agent, deploymentID: after, closureSize: nil))
            try await services.deploy.reconcile(agent, running: nil, connectedAt: connectedAt)
            #expect(try await services.deploy.deployment(id: after, by: reader).status == .inProgress)
        }
    }
}
