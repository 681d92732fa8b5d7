import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import NixCore
import Testing

/// The deployments gauge of `/metrics`, counted in memory from the deploy events, agrees with the
/// database through every transition, on both databases.
@Suite struct DeploymentTallyTests {
    /// Waits until the tally shows `expected` for every status it names.
    static func settle(_ tally: DeploymentTally, _ expected: [DeploymentStatus: Int]) async -> [DeploymentStatus: Int] {
        var snapshot: [DeploymentStatus: Int] = [:]
        for _ in 0..<200 {
            snapshot = await tally.snapshot
            if expected.allSatisfy({ snapshot[$0.key, default: 0] == $0.value }) { return snapshot }
            try? await Task.sleep(for: .milliseconds(25))
        }
        return snapshot
    }

    @Test(arguments: DatabaseBackend.allCases)
    func tallyFollowsEveryTransition(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let web1 = try await services.addAgent("web1")
            _ = try await services.addAgent("web2")
            // Created before the tally starts: counted when it loads.
            let first = try await DeployRulesTests.activate(services, "web1", DeployRulesTests.pathA)
            let tally = DeploymentTally(store: services.store, events: services.events, logger: Services.logger)
            let relay = Task { await services.events.run() }
            let counting = Task { await tally.run() }
            defer {
                counting.cancel()
                relay.cancel()
            }
            #expect(await Self.settle(tally, [.pending: 1])[.pending] == 1)

            let second = try await DeployRulesTests.activate(services, "web2", DeployRulesTests.pathB)
            #expect(await Self.settle(tally, [.pending: 2])[.pending] == 2)
            #expect(try await services.deploy.agentStarted(web1, deploymentID: first, closureSize: nil))
            var snapshot = await Self.settle(tally, [.pending: 1, .inProgress: 1])
            #expect(snapshot[.pending] == 1 && snapshot[.inProgress] == 1, "\(snapshot)")
            try await services.deploy.agentFinished(
                web1,
                outcome: DeploymentOutcome(
                    id: first, succeeded: true, reason: nil, rolledBack: false, currentStorePath: DeployRulesTests.pathA
                ))
            _ = try await services.deploy.cancel(id: second, by: try await services.principal(.activate))
            snapshot = await Self.settle(tally, [.pending: 0, .inProgress: 0, .succeeded: 1, .cancelled: 1])
            #expect(snapshot[.succeeded] == 1 && snapshot[.cancelled] == 1, "\(snapshot)")
            #expect(snapshot[.pending] == 0 && snapshot[.inProgress] == 0, "\(snapshot)")
            // What the database says, status by status.
            let counted = try await services.store.deploymentCounts(workspaceID: nil)
            #expect(DeploymentStatus.allCases.allSatisfy { snapshot[$0, default: 0] == counted[$0, default: 0] })
        }
    }
}
