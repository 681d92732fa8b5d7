import Foundation
import TestSupport
import Testing

/// `capstan deploy local` on an agent's machine: without the server, under the agent's lock, reported
/// once the agent is connected again, and recorded in the audit log as done on that machine.
@Suite(.serialized) struct BreakGlassTests {
    private func auditEvents(_ fixture: DeployFixture) throws -> [[String: Any]] {
        let output = try fixture.admin.run(["audit", "--json"]).stdout
        return try JSONSerialization.jsonObject(with: output) as? [[String: Any]] ?? []
    }

    @Test func rollbackWithTheServerStoppedIsAuditedOnceTheAgentReconnects() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("glass")
        let marker = fixture.marker("glass")
        let v1 = try fixture.configuration("glass-v1", marker: marker)
        let v2 = try fixture.configuration("glass-v2", marker: marker)
        #expect(try fixture.activate(try fixture.deployJSON(["glass": v1])).status == 0, "\(machine.log)")
        #expect(try fixture.activate(try fixture.deployJSON(["glass": v2])).status == 0, "\(machine.log)")
        #expect(machine.currentProfileTarget == v2)

        fixture.server.stop()
        let rollback = try machine.runCapstan([
            "deploy", "local", "rollback", "--state-dir", machine.stateDirectory, "--profiles-dir",
            "/nix/var/nix/profiles",
        ])
        #expect(rollback.status == 0, "\(rollback.stdoutString)\(rollback.stderrString)")
        #expect(rollback.stderrString.contains("rollback: \(v1) is active"), "\(rollback.stderrString)")
        #expect(machine.currentProfileTarget == v1)
        #expect(Array(ToyConfiguration.actions(marker).suffix(2)) == ["test \(v1)", "boot \(v1)"])

        try fixture.server.start()
        try fixture.server.waitUntilHealthy()
        var event: [String: Any]?
        #expect(
            eventually(timeout: 90) {
                event = (try? auditEvents(fixture))?.first { $0["action"] as? String == "agent.local" }
                return event != nil
            }, "\(machine.log)")
        #expect(event?["target"] as? String == "glass")
        #expect(event?["actor"] as? String == "on the machine of agent glass")
        let detail = event?["detail"] as? String ?? ""
        #expect(detail.contains("rollback to \(v1) on the machine at "), "\(detail)")
        #expect(detail.hasSuffix(": succeeded"), "\(detail)")
        let table = try fixture.admin.run(["audit"]).stdoutString
        #expect(table.contains("agent.local"), "\(table)")
        let page = try DashboardPage.fetch(fixture, "/audit")
        #expect(page.contains("agent.local") && page.contains("rollback to \(v1)"), "\(page)")
        // Reported once: a reconnect does not add it again.
        machine.stop()
        try machine.start()
        Thread.sleep(forTimeInterval: 5)
        #expect(try auditEvents(fixture).filter { $0["action"] as? String == "agent.local" }.count == 1)
    }

    @Test func aLocalActionIsRefusedWhileADeploymentRuns() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("busy")
        let marker = fixture.marker("busy")
        let v1 = try fixture.configuration("busy-v1", marker: marker)
        let seconds = 86_000 + Int.random(in: 0..<400)
        var hanging = ToyConfiguration.Options()
        hanging.switchPrelude = "sleep \(seconds)"
        let v2 = try fixture.configuration("busy-v2", marker: marker, options: hanging)
        #expect(try fixture.activate(try fixture.deployJSON(["busy": v1])).status == 0, "\(machine.log)")
        let started = try fixture.activate(try fixture.deployJSON(["busy": v2]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(started.stdoutString)["busy"])
        #expect(
            eventually(timeout: 60) {
                (try? ProcessRunner.run(["/usr/bin/pgrep", "-f", "sleep \(seconds)"]).stdoutString.isEmpty) == false
            })

        let refused = try machine.runCapstan([
            "deploy", "local", "activate", v1, "--state-dir", machine.stateDirectory, "--profiles-dir",
            "/nix/var/nix/profiles",
        ])
        #expect(refused.status == 2, "\(refused.stderrString)")
        #expect(refused.stderrString.contains("a deployment is running on this machine"), "\(refused.stderrString)")
        #expect(!FileManager.default.fileExists(atPath: machine.stateDirectory + "/local-actions/deployments"))

        try fixture.admin.run(["deploy", "cancel", id])
        #expect(eventually(timeout: 60) { (try? fixture.deployment(id)["status"] as? String) == "Cancelled" })
        #expect(machine.currentProfileTarget == v1)
    }
}
