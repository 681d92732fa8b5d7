import Foundation
import Testing
import TestSupport

/// Killed servers, killed agents, several replicas: deployments still end in a recorded state.
@Suite(.serialized) struct DeployFaultTests {
    @Test func serverKilledMidDeploymentRecordsTheOutcome() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("steady")
        let marker = fixture.marker("steady")
        var slow = ToyConfiguration.Options()
        slow.switchPrelude = "sleep 4"
        let path = try fixture.configuration("steady", marker: marker, options: slow)
        let activation = try fixture.activate(try fixture.deployJSON(["steady": path]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(activation.stdoutString)["steady"])
        #expect(try eventually { try fixture.deployment(id)["status"] as? String == "InProgress" })
        fixture.server.kill()
        sleep(1)
        try fixture.server.start()
        #expect(
            try eventually(timeout: 90) { try fixture.deployment(id)["status"] as? String == "Succeeded" },
            "\(machine.log)")
        #expect(machine.currentProfileTarget == path)
        #expect(ToyConfiguration.switches(marker) == ["switched \(path)"])
        let agents = try fixture.admin.run(["agent", "list", "--json"]).stdout
        let listed = try JSONSerialization.jsonObject(with: agents) as? [[String: Any]] ?? []
        #expect(listed.first?["currentStorePath"] as? String == path)
        #expect(listed.first?["online"] as? Bool == true)
    }

    @Test func agentKilledMidDeploymentDoesNotLeaveItInProgress() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("fragile")
        let marker = fixture.marker("fragile")
        var slow = ToyConfiguration.Options()
        slow.switchPrelude = "sleep 60"
        let path = try fixture.configuration("fragile", marker: marker, options: slow)
        let activation = try fixture.activate(try fixture.deployJSON(["fragile": path]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(activation.stdoutString)["fragile"])
        #expect(try eventually { try fixture.deployment(id)["status"] as? String == "InProgress" })
        // The whole machine's deployment work dies: agent and its detached runner.
        machine.kill()
        try ProcessRunner.run(["pkill", "-KILL", "-f", "state-dir \(machine.stateDirectory)"])
        try machine.start()
        #expect(try eventually(timeout: 60) { try fixture.deployment(id)["status"] as? String == "Failed" }, "\(machine.log)")
        let reason = try fixture.deployment(id)["reason"] as? String ?? ""
        #expect(reason.contains("killed"), "\(reason)")
    }

    @Test func twoReplicasOnOnePostgreSQL() throws {
        let postgres = try PostgresServer.shared()
        let database = try postgres.createDatabase(prefix: "replicas")
        let temp = try TemporaryDirectory("capstan-replicas")
        let data = temp.sub("data")
        let replicaA = try ServerProcess(dataDirectory: data, arguments: ["--database-url", database])
        let replicaB = try ServerProcess(dataDirectory: data, arguments: ["--database-url", database])
        let fixture = try DeployFixture(server: replicaA, temp: temp)
        // The agent talks to replica B only.
        let created = try fixture.admin.run(["agent", "create", "remote", "--json"]).stdout
        let token = try #require((try JSONSerialization.jsonObject(with: created) as? [String: Any])?["token"] as? String)
        let machine = try AgentMachine(name: "remote", token: token, serverURL: replicaB.url, in: temp)
        try machine.start()
        let marker = fixture.marker("remote")
        let path = try fixture.configuration("remote", marker: marker)
        #expect(try eventually {
            let listed = try fixture.admin.run(["agent", "list", "--json"]).stdout
            return (try JSONSerialization.jsonObject(with: listed) as? [[String: Any]])?.first?["online"] as? Bool == true
        })
        // Activated and followed through replica A.
        let result = try fixture.activate(try fixture.deployJSON(["remote": path]), ["--timeout", "120s"])
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)\n\(machine.log)")
        #expect(result.stdoutString.contains("[remote] switching to \(path)"))
        #expect(machine.currentProfileTarget == path)
        #expect(ToyConfiguration.switches(marker) == ["switched \(path)"])
    }
}
