import Foundation
import TestSupport
import Testing

/// Health checks, two-phase activation, timeouts and cancelling end to end: real server, agents on
/// machines with their own `/nix`, toy configurations that serve a port and fail units.
@Suite(.serialized) struct SaferActivationDeployTests {
    @Test func brokenHTTPProbeRollsBackAndIsReported() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("web")
        let marker = fixture.marker("web")
        let port = try FreePort.find()
        var serving = ToyConfiguration.Options()
        serving.httpPort = port
        let v1 = try fixture.configuration("web-v1", marker: marker, options: serving)
        let v2 = try fixture.configuration("web-v2", marker: marker)
        let probe = "http://127.0.0.1:\(port)/"
        let checks: [String: Any] = [
            "checks": [["http": probe, "status": 200, "timeout": "2s"]],
            "agentChecks": ["web": [["command": ["/bin/sh", "-c", "echo probing; exit 0"]]]], "grace": "3s",
        ]

        let healthy = try fixture.activate(try fixture.deployJSON(["web": v1], extra: checks))
        #expect(healthy.status == 0, "\(healthy.stdoutString)\(healthy.stderrString)\n\(machine.log)")
        #expect(ToyConfiguration.actions(marker) == ["test \(v1)", "boot \(v1)"])
        #expect(healthy.stdoutString.contains("http \(probe): passed"), "\(healthy.stdoutString)")
        let healthyID = try #require(DeployFixture.deploymentIDs(healthy.stdoutString)["web"])
        let passed = try fixture.deployment(healthyID)["checks"] as? [[String: Any]] ?? []
        #expect(passed.map { $0["check"] as? String } == ["http \(probe)", "command /bin/sh -c echo probing; exit 0"])
        #expect(passed.allSatisfy { $0["passed"] as? Bool == true && ($0["attempts"] as? Int ?? 0) >= 1 })
        #expect((passed.last?["output"] as? [String]) == ["probing"])

        // v2 has no HTTP service: the probe fails for the whole grace period.
        let broken = try fixture.activate(try fixture.deployJSON(["web": v2], extra: checks))
        #expect(broken.status == 1, "\(broken.stdoutString)\(broken.stderrString)")
        #expect(ToyConfiguration.actions(marker) == ["test \(v1)", "boot \(v1)", "test \(v2)", "test \(v1)"])
        #expect(machine.currentProfileTarget == v1)
        #expect(machine.toy.httpServicePID != nil, "v1's service runs again")
        let output = broken.stdoutString
        #expect(output.contains("[web] Health check http \(probe): failed"), "\(output)")
        #expect(output.contains("http \(probe): FAILED ("), "the summary names the failed check: \(output)")
        let brokenID = try #require(DeployFixture.deploymentIDs(output)["web"])
        let deployment = try fixture.deployment(brokenID)
        #expect(deployment["status"] as? String == "Failed")
        #expect(deployment["rolledBack"] as? Bool == true)
        #expect((deployment["reason"] as? String ?? "").contains("health check failed"), "\(deployment)")
        #expect((deployment["reason"] as? String ?? "").contains("http \(probe)"), "\(deployment)")
        let results = deployment["checks"] as? [[String: Any]] ?? []
        let http = try #require(results.first { $0["check"] as? String == "http \(probe)" })
        #expect(http["passed"] as? Bool == false)
        #expect((http["attempts"] as? Int ?? 0) >= 2, "retried during the grace period: \(http)")
        #expect(!((http["output"] as? [String]) ?? []).isEmpty)
        let text = try fixture.admin.run(["deploy", "status", brokenID]).stdoutString
        #expect(text.contains("check:       http \(probe): FAILED"), "\(text)")
        let page = try DashboardPage.fetch(fixture, "/deployments/\(brokenID)")
        #expect(page.contains(#"<table id="checks">"#), "\(page)")
        #expect(page.contains(#"<tr class="check check-failed"><td><code>http \#(probe)</code></td><td>failed</td>"#))
        #expect(
            page.contains(#"<tr class="check check-passed"><td><code>command /bin/sh -c echo probing; exit 0</code>"#))
    }

    @Test func agentsOwnSystemdCheckToleratesUnitsFailedBefore() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent(
            "units", start: false, arguments: ["--check", #"{"systemd": "no-failed-units"}"#, "--check-grace", "2s"])
        machine.toy.failedUnits = ["legacy.service"]
        try machine.start()
        let marker = fixture.marker("units")
        var same = ToyConfiguration.Options()
        same.failedUnits = ["legacy.service"]
        var breaking = ToyConfiguration.Options()
        breaking.failedUnits = ["legacy.service", "web.service"]
        let v1 = try fixture.configuration("units-v1", marker: marker, options: same)
        let v2 = try fixture.configuration("units-v2", marker: marker, options: breaking)

        let first = try fixture.activate(try fixture.deployJSON(["units": v1]))
        #expect(first.status == 0, "\(first.stdoutString)\n\(machine.log)")
        #expect(first.stdoutString.contains("systemd no-failed-units: passed"))
        let second = try fixture.activate(try fixture.deployJSON(["units": v2]))
        #expect(second.status == 1, "\(second.stdoutString)")
        #expect(second.stdoutString.contains("failed since the switch: web.service"), "\(second.stdoutString)")
        let id = try #require(DeployFixture.deploymentIDs(second.stdoutString)["units"])
        let deployment = try fixture.deployment(id)
        #expect(deployment["rolledBack"] as? Bool == true)
        #expect((deployment["reason"] as? String ?? "").contains("systemd no-failed-units"))
        #expect(machine.currentProfileTarget == v1)
        #expect(machine.toy.failedUnits == ["legacy.service"])
    }

    @Test func hangingSwitchTimesOutAndTheNextDeploymentRuns() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("stuck")
        let marker = fixture.marker("stuck")
        let v1 = try fixture.configuration("stuck-v1", marker: marker)
        let seconds = 87_000 + Int.random(in: 0..<400)
        var hanging = ToyConfiguration.Options()
        hanging.switchPrelude = "sleep \(seconds)"
        let v2 = try fixture.configuration("stuck-v2", marker: marker, options: hanging)
        let v3 = try fixture.configuration("stuck-v3", marker: marker)
        #expect(try fixture.activate(try fixture.deployJSON(["stuck": v1])).status == 0)

        let stuck = try fixture.activate(try fixture.deployJSON(["stuck": v2], extra: ["activationTimeout": "3s"]))
        #expect(stuck.status == 1, "\(stuck.stdoutString)")
        let id = try #require(DeployFixture.deploymentIDs(stuck.stdoutString)["stuck"])
        let deployment = try fixture.deployment(id)
        #expect(deployment["status"] as? String == "Failed")
        #expect(deployment["rolledBack"] as? Bool == true)
        #expect(
            (deployment["reason"] as? String ?? "").contains("did not finish within its timeout of 3s"), "\(deployment)"
        )
        #expect(machine.currentProfileTarget == v1)
        #expect(try ProcessRunner.run(["/usr/bin/pgrep", "-f", "sleep \(seconds)"]).stdoutString.isEmpty)

        let next = try fixture.activate(try fixture.deployJSON(["stuck": v3]))
        #expect(next.status == 0, "\(next.stdoutString)\n\(machine.log)")
        #expect(machine.currentProfileTarget == v3)
        #expect(Array(ToyConfiguration.actions(marker).suffix(2)) == ["test \(v3)", "boot \(v3)"])
    }

    @Test func cancelStopsARunningDeploymentAndAPendingOneNeverStarts() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("steady")
        let marker = fixture.marker("steady")
        let started = fixture.temp.sub("steady-slow-started")
        let v1 = try fixture.configuration("steady-v1", marker: marker)
        var slow = ToyConfiguration.Options()
        slow.switchPrelude = "case \"\\$1\" in test) touch \(started); sleep 120 ;; esac"
        let v2 = try fixture.configuration("steady-v2", marker: marker, options: slow)
        let v3 = try fixture.configuration("steady-v3", marker: marker)
        #expect(try fixture.activate(try fixture.deployJSON(["steady": v1])).status == 0)
        let deployer = fixture.admin.with(token: fixture.activateToken)

        let running = try fixture.activate(try fixture.deployJSON(["steady": v2]), ["--async"])
        let runningID = try #require(DeployFixture.deploymentIDs(running.stdoutString)["steady"])
        #expect(try eventually { FileManager.default.fileExists(atPath: started) }, "\(machine.log)")
        #expect(try eventually { try fixture.deployment(runningID)["status"] as? String == "InProgress" })
        let cancel = try deployer.run(["deploy", "cancel", runningID])
        #expect(cancel.stdoutString.contains("Asked steady to stop deployment #2"), "\(cancel.stdoutString)")
        #expect(try eventually(timeout: 30) { try fixture.deployment(runningID)["status"] as? String == "Cancelled" })
        let cancelled = try fixture.deployment(runningID)
        #expect(cancelled["rolledBack"] as? Bool == true, "\(cancelled)")
        #expect((cancelled["reason"] as? String ?? "").contains("cancelled during the activation"), "\(cancelled)")
        #expect(machine.currentProfileTarget == v1)
        #expect(ToyConfiguration.actions(marker) == ["test \(v1)", "boot \(v1)", "test \(v1)"])

        // At once, while the server may still see it Pending (the agent reports twice a second):
        // either way the agent stops it, and its report of the rollback is kept.
        try FileManager.default.removeItem(atPath: started)
        let racing = try fixture.activate(try fixture.deployJSON(["steady": v2]), ["--async"])
        let racingID = try #require(DeployFixture.deploymentIDs(racing.stdoutString)["steady"])
        #expect(try eventually { FileManager.default.fileExists(atPath: started) }, "\(machine.log)")
        try deployer.run(["deploy", "cancel", racingID])
        let stopped = try eventually(timeout: 30) {
            let deployment = try fixture.deployment(racingID)
            return deployment["status"] as? String == "Cancelled" && deployment["rolledBack"] as? Bool == true
        }
        let raced = try fixture.deployment(racingID)
        #expect(stopped, "\(raced)")
        #expect((raced["reason"] as? String ?? "").contains("cancelled during the activation"), "\(raced)")
        #expect(machine.currentProfileTarget == v1)

        machine.stop()
        let pending = try fixture.activate(try fixture.deployJSON(["steady": v3]), ["--async"])
        let pendingID = try #require(DeployFixture.deploymentIDs(pending.stdoutString)["steady"])
        try deployer.run(["deploy", "cancel", pendingID])
        try machine.start()
        #expect(try eventually { try agentOnline(fixture, "steady") })
        Thread.sleep(forTimeInterval: 2)
        let never = try fixture.deployment(pendingID)
        #expect(never["status"] as? String == "Cancelled")
        #expect(never["startedOn"] == nil || never["startedOn"] is NSNull)
        #expect(machine.currentProfileTarget == v1)
        #expect(!ToyConfiguration.actions(marker).contains { $0.hasSuffix(v3) })
    }

    @Test func plainDeployJSONRunsAsBefore() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("plain")
        let marker = fixture.marker("plain")
        let path = try fixture.configuration("plain-v1", marker: marker)
        let result = try fixture.activate(try fixture.deployJSON(["plain": path]))
        #expect(result.status == 0, "\(result.stdoutString)")
        let id = try #require(DeployFixture.deploymentIDs(result.stdoutString)["plain"])
        let deployment = try fixture.deployment(id)
        #expect(deployment["checks"] == nil, "no checks were asked for: \(deployment)")
        #expect(!result.stdoutString.contains("Health check"))
        #expect(machine.currentProfileTarget == path)
    }

    private func agentOnline(_ fixture: DeployFixture, _ name: String) throws -> Bool {
        let listed = try fixture.admin.run(["agent", "list", "--json"]).stdout
        let agents = try JSONSerialization.jsonObject(with: listed) as? [[String: Any]] ?? []
        return agents.contains { $0["name"] as? String == name && $0["online"] as? Bool == true }
    }
}
