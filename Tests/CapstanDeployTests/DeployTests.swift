import Foundation
import TestSupport
import Testing

/// Deployments end to end: real server, real agents on machines with their own `/nix`, real Nix.
@Suite(.serialized) struct DeployTests {
    @Test func threeAgentsDeployTogether() throws {
        let fixture = try DeployFixture()
        var paths: [String: String] = [:]
        var markers: [String: String] = [:]
        for name in ["web1", "web2", "db1"] {
            try fixture.addAgent(name)
            markers[name] = fixture.marker(name)
            paths[name] = try fixture.configuration(name, marker: markers[name]!)
        }
        try NixFixtures.delete(Array(paths.values))
        let result = try fixture.activate(try fixture.deployJSON(paths))
        #expect(result.status == 0, "activate failed: \(result.stdoutString)\(result.stderrString)")
        for (name, path) in paths {
            #expect(
                fixture.machines[name]?.currentProfileTarget == path,
                "\(name)'s profile: \(fixture.machines[name]?.log ?? "")")
            #expect(ToyConfiguration.switches(markers[name]!) == ["switched \(path)"])
            #expect(result.stdoutString.contains("[\(name)] switching to \(path)"))
            let successLines = result.stdoutString.split(separator: "\n").filter {
                $0.contains("[\(name)]") && $0.contains("Successfully activated the deployment")
            }
            #expect(successLines.count == 1, "\(successLines)")
        }
        #expect(result.stdoutString.contains("Succeeded"))
    }

    @Test func failingSwitchRollsBackThatAgentOnly() throws {
        let fixture = try DeployFixture()
        let good = try fixture.addAgent("good")
        let bad = try fixture.addAgent("bad")
        let goodMarker = fixture.marker("good")
        let badMarker = fixture.marker("bad")
        let first = try fixture.configuration("bad-v1", marker: badMarker)
        let firstGood = try fixture.configuration("good-v1", marker: goodMarker)
        let initial = try fixture.activate(try fixture.deployJSON(["bad": first, "good": firstGood]))
        #expect(initial.status == 0, "\(initial.stdoutString)\(initial.stderrString)")

        var failing = ToyConfiguration.Options()
        failing.switchExitCode = 3
        let broken = try fixture.configuration("bad-v2", marker: badMarker, options: failing)
        let secondGood = try fixture.configuration("good-v2", marker: goodMarker)
        let result = try fixture.activate(try fixture.deployJSON(["bad": broken, "good": secondGood]))
        #expect(result.status == 1, "\(result.stdoutString)\(result.stderrString)")
        #expect(bad.currentProfileTarget == first)
        #expect(
            ToyConfiguration.switches(badMarker) == ["switched \(first)", "switched \(broken)", "switched \(first)"])
        #expect(good.currentProfileTarget == secondGood)
        let ids = DeployFixture.deploymentIDs(result.stdoutString)
        let badDeployment = try fixture.deployment(try #require(ids["bad"]))
        #expect(badDeployment["status"] as? String == "Failed")
        #expect(badDeployment["rolledBack"] as? Bool == true)
        #expect((badDeployment["reason"] as? String ?? "").contains("exit"), "\(badDeployment)")
        #expect(try fixture.deployment(try #require(ids["good"]))["status"] as? String == "Succeeded")
    }

    @Test func failingRollbackScriptRollsBack() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("checked")
        let marker = fixture.marker("checked")
        let first = try fixture.configuration("checked-v1", marker: marker)
        #expect(try fixture.activate(try fixture.deployJSON(["checked": first])).status == 0)
        let second = try fixture.configuration("checked-v2", marker: marker)
        let script = try ToyConfiguration.script(exitCode: 1, in: fixture.temp)
        try fixture.admin.run(["push", "fleet", script])
        let result = try fixture.activate(
            try fixture.deployJSON(["checked": second], rollbackScript: [DeployFixture.system: script]))
        #expect(result.status == 1, "\(result.stdoutString)")
        #expect(machine.currentProfileTarget == first)
        #expect(ToyConfiguration.switches(marker) == ["switched \(first)", "switched \(second)", "switched \(first)"])
    }

    @Test func configurationForAnotherSystemIsRefusedBeforeSwitching() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("picky")
        let marker = fixture.marker("picky")
        var foreign = ToyConfiguration.Options()
        foreign.system = "aarch64-darwin"
        let path = try fixture.configuration("foreign", marker: marker, options: foreign)
        let result = try fixture.activate(try fixture.deployJSON(["picky": path]))
        #expect(result.status == 1)
        #expect(result.stdoutString.contains("aarch64-darwin"))
        #expect(ToyConfiguration.switches(marker).isEmpty)
        #expect(machine.currentProfileTarget == nil)
    }

    @Test func offlineAgentGetsOnlyTheNewestDeployment() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("laptop", start: false)
        let marker = fixture.marker("laptop")
        let older = try fixture.configuration("laptop-v1", marker: marker)
        let newer = try fixture.configuration("laptop-v2", marker: marker)
        let first = try fixture.activate(try fixture.deployJSON(["laptop": older]), ["--async"])
        #expect(first.status == 0)
        let second = try fixture.activate(try fixture.deployJSON(["laptop": newer]), ["--async"])
        #expect(second.status == 0)
        let olderID = try #require(DeployFixture.deploymentIDs(first.stdoutString)["laptop"])
        let newerID = try #require(DeployFixture.deploymentIDs(second.stdoutString)["laptop"])
        let cancelled = try fixture.deployment(olderID)
        #expect(cancelled["status"] as? String == "Cancelled")
        #expect((cancelled["reason"] as? String ?? "").contains("superseded"))
        try machine.start()
        #expect(try eventually { try fixture.deployment(newerID)["status"] as? String == "Succeeded" })
        #expect(ToyConfiguration.switches(marker) == ["switched \(newer)"])
        #expect(machine.currentProfileTarget == newer)
    }

    @Test func activationScriptsDoNotSeeTheAgentToken() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("envcheck")
        let marker = fixture.marker("envcheck")
        var dumping = ToyConfiguration.Options()
        dumping.switchPrelude = "env > \(marker).env"
        let path = try fixture.configuration("envcheck", marker: marker, options: dumping)
        let activation = try fixture.activate(try fixture.deployJSON(["envcheck": path]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(activation.stdoutString)["envcheck"])
        #expect(try eventually { try fixture.deployment(id)["status"] as? String == "Succeeded" }, "\(machine.log)")
        let environment = try String(contentsOfFile: marker + ".env", encoding: .utf8)
        #expect(environment.contains("PATH="), "the dump is the switch's environment")
        #expect(!environment.contains("AGENT_TOKEN"), "the switch saw the agent's token")
        #expect(!environment.contains(machine.token))
    }

    @Test func switchThatKillsTheAgentStillFinishes() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("selfrestart")
        let marker = fixture.marker("selfrestart")
        var killing = ToyConfiguration.Options()
        // As a NixOS switch restarting the agent's own service would.
        // Only when activating (switch, test), as NixOS restarts services; writing the boot entry does not.
        killing.switchPrelude = "[ \"\\$1\" = boot ] || { pkill -f 'deploy agent selfrestart' ; sleep 1; }"
        let path = try fixture.configuration("selfrestart", marker: marker, options: killing)
        let activation = try fixture.activate(try fixture.deployJSON(["selfrestart": path]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(activation.stdoutString)["selfrestart"])
        #expect(try eventually { !machine.isRunning })
        #expect(try eventually(timeout: 30) { ToyConfiguration.switches(marker).count == 1 })
        try machine.start()
        #expect(try eventually { try fixture.deployment(id)["status"] as? String == "Succeeded" }, "\(machine.log)")
        #expect(machine.currentProfileTarget == path)
    }

    @Test func badInputIsRefusedAndCreatesNothing() throws {
        let fixture = try DeployFixture()
        try fixture.addAgent("only", start: false)
        let malformed = fixture.temp.sub("malformed.json")
        try "{\"agents\": {\"only\": ".write(toFile: malformed, atomically: true, encoding: .utf8)
        let notJSON = try fixture.activate(malformed)
        #expect(notJSON.status != 0)
        #expect(notJSON.stderrString.contains("not valid JSON"))
        let notStorePath = try fixture.activate(try fixture.deployJSON(["only": "/etc/passwd"]))
        #expect(notStorePath.stderrString.contains("agents.only: \"/etc/passwd\" is not a store path"))
        let unknown = try fixture.activate(
            try fixture.deployJSON([
                "only": "/nix/store/00000000000000000000000000000000-x",
                "ghost": "/nix/store/00000000000000000000000000000000-y",
            ]))
        #expect(unknown.status != 0)
        #expect(unknown.stderrString.contains("agents.ghost"), "\(unknown.stderrString)")
        let pushToken = try fixture.admin.createToken(kind: "push", cache: "fleet")
        let wrongKind = try fixture.admin.with(token: pushToken).run(
            ["deploy", "activate", try fixture.deployJSON(["only": "/nix/store/00000000000000000000000000000000-x"])],
            check: false)
        #expect(wrongKind.stderrString.contains("activate token"))
        let listed = try fixture.admin.run(["agent", "list", "--json"]).stdout
        let agents = try JSONSerialization.jsonObject(with: listed) as? [[String: Any]] ?? []
        #expect(agents.first?["currentDeployment"] == nil || agents.first?["currentDeployment"] is NSNull)
    }
}

@Suite struct WorkspaceIsolationTests {
    @Test func tokensOfOneWorkspaceCannotActInAnother() throws {
        let fixture = try DeployFixture()
        try fixture.addAgent("shared-name", start: false)
        let other = try fixture.admin.run(["workspace", "create", "team-b"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let otherAdmin = fixture.admin.with(token: other)
        let otherActivate = try otherAdmin.createToken(kind: "activate")
        let path = "/nix/store/00000000000000000000000000000000-x"
        // The other workspace does not know this workspace's agent.
        let refused = try otherAdmin.with(token: otherActivate).run(
            ["deploy", "activate", try fixture.deployJSON(["shared-name": path]), "--async"], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("no agent named 'shared-name'"))
        // Nor may it read this workspace's deployments.
        let mine = try fixture.activate(try fixture.deployJSON(["shared-name": path]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(mine.stdoutString)["shared-name"])
        let peek = try otherAdmin.with(token: otherActivate).run(["deploy", "status", id], check: false)
        #expect(peek.status != 0)
        #expect(peek.stderrString.contains("does not exist in this workspace"))
        // Nor see its agents or caches.
        let agents = try otherAdmin.run(["agent", "list", "--json"]).stdout
        #expect((try JSONSerialization.jsonObject(with: agents) as? [Any])?.isEmpty == true)
        let pushOther = try otherAdmin.run(["token", "create", "--kind", "push", "--cache", "fleet"], check: false)
        #expect(pushOther.status != 0)
        // Only the first workspace's admins create workspaces.
        let nested = try otherAdmin.run(["workspace", "create", "team-c"], check: false)
        #expect(nested.stderrString.contains("admin token of the 'default' workspace"))
    }
}

@Suite(.serialized) struct DeployActionTests {
    @Test func cancelRetryAndRollback() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("steerable", start: false)
        let marker = fixture.marker("steerable")
        let v1 = try fixture.configuration("steer-v1", marker: marker)
        let v2 = try fixture.configuration("steer-v2", marker: marker)
        let deployer = fixture.admin.with(token: fixture.activateToken)

        // Cancel while pending; a finished deployment cannot be cancelled.
        let pending = try fixture.activate(try fixture.deployJSON(["steerable": v1]), ["--async"])
        let pendingID = try #require(DeployFixture.deploymentIDs(pending.stdoutString)["steerable"])
        try deployer.run(["deploy", "cancel", pendingID])
        #expect(try fixture.deployment(pendingID)["status"] as? String == "Cancelled")
        let again = try deployer.run(["deploy", "cancel", pendingID], check: false)
        #expect(again.status != 0)
        #expect(again.stderrString.contains("only a Pending or InProgress deployment can be cancelled"))

        // Retry the cancelled one: the agent runs v1.
        let retried = try deployer.run(["deploy", "retry", pendingID, "--json"]).stdout
        let retriedID = try #require(
            (try JSONSerialization.jsonObject(with: retried) as? [String: Any])?["id"] as? String)
        try machine.start()
        #expect(try eventually { try fixture.deployment(retriedID)["status"] as? String == "Succeeded" })
        #expect(machine.currentProfileTarget == v1)

        // Deploy v2, then roll the agent back to v1.
        #expect(try fixture.activate(try fixture.deployJSON(["steerable": v2])).status == 0)
        #expect(machine.currentProfileTarget == v2)
        let rollback = try deployer.run(["deploy", "rollback", "steerable", "--json"]).stdout
        let rollbackObject = try JSONSerialization.jsonObject(with: rollback) as? [String: Any]
        #expect(rollbackObject?["storePath"] as? String == v1)
        let rollbackID = try #require(rollbackObject?["id"] as? String)
        #expect(try eventually { try fixture.deployment(rollbackID)["status"] as? String == "Succeeded" })
        #expect(machine.currentProfileTarget == v1)
        #expect(ToyConfiguration.switches(marker) == ["switched \(v1)", "switched \(v2)", "switched \(v1)"])

        // The history lists all of them, newest first.
        let history = try deployer.run(["deploy", "status", rollbackID, "--json"]).stdout
        #expect((try JSONSerialization.jsonObject(with: history) as? [String: Any])?["index"] as? Int == 4)
    }
}
