import Foundation
import TestSupport
import Testing

/// Reboots end to end: agents on machines with their own `/nix` compare a booted-system link of the
/// test's with toy configurations whose kernels differ, report it, and reboot in their maintenance window.
@Suite(.serialized) struct RebootTests {
    /// A configuration of `kernel`, pushed to the fixture's cache; `switchScript` as in `ToyConfiguration.Options`.
    private func configuration(
        _ fixture: DeployFixture, _ name: String, marker: String, kernel: String, switchScript: String = ""
    ) throws -> String {
        var options = ToyConfiguration.Options()
        options.kernel = kernel
        options.switchScript = switchScript
        return try fixture.configuration(name, marker: marker, options: options)
    }

    /// The deployment's log as the server has it: all of it once the deployment has ended, else what
    /// following it for `seconds` gives.
    private func serverLog(_ fixture: DeployFixture, _ id: String, seconds: Int = 20) throws -> String {
        try ProcessRunner.run(
            [
                "curl", "-s", "--max-time", "\(seconds)", "-H",
                "Authorization: Bearer \(try fixture.server.adminToken)",
                "\(fixture.server.url)/api/v1/deployments/\(id)/log",
            ],
            check: false
        ).stdoutString.replacingOccurrences(of: "\\/", with: "/")
    }

    private func listedAgent(_ fixture: DeployFixture, _ name: String) throws -> [String: Any] {
        let listed = try fixture.admin.run(["agent", "list", "--json"]).stdout
        let agents = try JSONSerialization.jsonObject(with: listed) as? [[String: Any]] ?? []
        return agents.first { $0["name"] as? String == name } ?? [:]
    }

    @Test func aDifferentKernelIsReportedAsNeedingAReboot() throws {
        let fixture = try DeployFixture()
        let booted = fixture.temp.sub("booted-system-kernel")
        let machine = try fixture.addAgent("kernel", arguments: ["--booted-system", booted])
        let marker = fixture.marker("kernel")
        let v1 = try configuration(fixture, "kernel-v1", marker: marker, kernel: "6.1")
        let v2 = try configuration(fixture, "kernel-v2", marker: marker, kernel: "6.6")
        let v3 = try configuration(fixture, "kernel-v3", marker: marker, kernel: "6.1")

        #expect(try fixture.activate(try fixture.deployJSON(["kernel": v1])).status == 0, "\(machine.log)")
        // No booted system to compare with: the agent cannot tell, and says nothing.
        #expect(try listedAgent(fixture, "kernel")["needsReboot"] == nil)
        try FileManager.default.createSymbolicLink(atPath: booted, withDestinationPath: v1)
        #expect(
            eventually(timeout: 30) { (try? listedAgent(fixture, "kernel")["needsReboot"] as? Bool) == false },
            "\(machine.log)")

        #expect(try fixture.activate(try fixture.deployJSON(["kernel": v2])).status == 0, "\(machine.log)")
        #expect(
            eventually(timeout: 30) { (try? listedAgent(fixture, "kernel")["needsReboot"] as? Bool) == true },
            "\(machine.log)")
        let table = try fixture.admin.run(["agent", "list"]).stdoutString
        #expect(table.contains("online, needs reboot"), "\(table)")
        let page = try DashboardPage.fetch(fixture, "/agents")
        #expect(page.contains(#"<span class="badge reboot""#), "\(page)")

        // Another toplevel with the booted kernel: no reboot needed.
        #expect(try fixture.activate(try fixture.deployJSON(["kernel": v3])).status == 0, "\(machine.log)")
        #expect(
            eventually(timeout: 30) { (try? listedAgent(fixture, "kernel")["needsReboot"] as? Bool) == false },
            "\(machine.log)")
        #expect(!(try DashboardPage.fetch(fixture, "/agents")).contains(#"<span class="badge reboot""#))
    }

    /// Waits until the server has the log line that says deployment `id` waits for its reboot.
    private func expectWaitsForItsReboot(_ fixture: DeployFixture, _ id: String, machine: AgentMachine) {
        #expect(
            eventually(timeout: 60) {
                (try? serverLog(fixture, id, seconds: 2))?.contains(
                    "the deployment finishes once the machine has booted it") == true
            }, "\(machine.log)")
    }

    /// `HH:MM-HH:MM` from `start` to `end` hours from now, in local time (as the agent reads it).
    private static func window(hoursFromNow start: Int, _ end: Int) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm"
        return formatter.string(from: Date().addingTimeInterval(Double(start) * 3600)) + "-"
            + formatter.string(from: Date().addingTimeInterval(Double(end) * 3600))
    }

    /// An agent with `--reboot-policy when-needed` whose reboot command records its calls, running v1
    /// (kernel 6.1, booted) and given v2 (kernel 6.6), which waits for the reboot.
    private func rebootingMachine(
        _ fixture: DeployFixture, _ name: String, window: String, v1SwitchScript: String = ""
    ) throws -> (
        machine: AgentMachine, booted: String, calls: String, marker: String, v1: String, v2: String, id: String
    ) {
        let booted = fixture.temp.sub("booted-system-\(name)")
        let calls = fixture.temp.sub("reboot-calls-\(name)")
        let command = fixture.temp.sub("reboot-\(name)")
        try "#!/bin/sh\necho \"reboot $*\" >> \(calls)\n".write(toFile: command, atomically: true, encoding: .utf8)
        chmod(command, 0o755)
        let machine = try fixture.addAgent(
            name,
            arguments: [
                "--booted-system", booted, "--reboot-policy", "when-needed", "--maintenance-window", window,
                "--reboot-command", "\(command) now",
            ])
        let marker = fixture.marker(name)
        let v1 = try configuration(
            fixture, "\(name)-v1", marker: marker, kernel: "6.1", switchScript: v1SwitchScript)
        let v2 = try configuration(fixture, "\(name)-v2", marker: marker, kernel: "6.6")
        #expect(try fixture.activate(try fixture.deployJSON([name: v1])).status == 0, "\(machine.log)")
        try FileManager.default.createSymbolicLink(atPath: booted, withDestinationPath: v1)
        let started = try fixture.activate(try fixture.deployJSON([name: v2]), ["--async"])
        let id = try #require(DeployFixture.deploymentIDs(started.stdoutString)[name], "\(started.stdoutString)")
        return (machine, booted, calls, marker, v1, v2, id)
    }

    private static func calls(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test func inTheWindowTheAgentRebootsOnceThenConfirmsTheBootedSystem() throws {
        let fixture = try DeployFixture()
        let setup = try rebootingMachine(fixture, "window", window: Self.window(hoursFromNow: -1, 1))
        #expect(eventually(timeout: 60) { Self.calls(setup.calls) == ["reboot now"] }, "\(setup.machine.log)")
        Thread.sleep(forTimeInterval: 3)
        #expect(try fixture.deployment(setup.id)["status"] as? String == "InProgress")
        // A restarted agent in the same window does not reboot again.
        setup.machine.stop()
        try setup.machine.start()
        #expect(eventually(timeout: 30) { (try? listedAgent(fixture, "window")["online"] as? Bool) == true })
        Thread.sleep(forTimeInterval: 4)
        #expect(Self.calls(setup.calls) == ["reboot now"], "\(setup.machine.log)")
        #expect(try fixture.deployment(setup.id)["status"] as? String == "InProgress")

        // The machine comes back on the deployed configuration.
        try FileManager.default.removeItem(atPath: setup.booted)
        try FileManager.default.createSymbolicLink(atPath: setup.booted, withDestinationPath: setup.v2)
        #expect(
            eventually(timeout: 60) { (try? fixture.deployment(setup.id)["status"] as? String) == "Succeeded" },
            "\(setup.machine.log)")
        #expect(
            eventually(timeout: 30) { (try? listedAgent(fixture, "window")["needsReboot"] as? Bool) == false })
        #expect(setup.machine.currentProfileTarget == setup.v2)
        #expect(Self.calls(setup.calls) == ["reboot now"])
        let log = try serverLog(fixture, setup.id)
        #expect(log.contains("The machine rebooted into the deployed configuration \(setup.v2)"), "\(log)")
    }

    @Test func outsideTheWindowTheAgentNeverReboots() throws {
        let fixture = try DeployFixture()
        let setup = try rebootingMachine(fixture, "later", window: Self.window(hoursFromNow: 2, 3))
        #expect(
            eventually(timeout: 60) { (try? listedAgent(fixture, "later")["needsReboot"] as? Bool) == true },
            "\(setup.machine.log)")
        Thread.sleep(forTimeInterval: 5)
        #expect(Self.calls(setup.calls).isEmpty, "\(setup.machine.log)")
        #expect(try fixture.deployment(setup.id)["status"] as? String == "InProgress")

        // Cancelled while it waits: the previous configuration is the one to boot again.
        try fixture.admin.run(["deploy", "cancel", setup.id])
        #expect(
            eventually(timeout: 60) { (try? fixture.deployment(setup.id)["rolledBack"] as? Bool) == true },
            "\(setup.machine.log)")
        #expect(try fixture.deployment(setup.id)["status"] as? String == "Cancelled")
        #expect(setup.machine.currentProfileTarget == setup.v1)
        #expect(ToyConfiguration.actions(setup.marker).last == "boot \(setup.v1)")
        #expect(Self.calls(setup.calls).isEmpty)
    }

    @Test func aMachineThatBootedSomethingElseFailsTheDeploymentAndRollsBack() throws {
        let fixture = try DeployFixture()
        let setup = try rebootingMachine(fixture, "fallback", window: Self.window(hoursFromNow: -1, 1))
        let other = try configuration(fixture, "fallback-v3", marker: setup.marker, kernel: "6.1")
        #expect(eventually(timeout: 60) { Self.calls(setup.calls) == ["reboot now"] }, "\(setup.machine.log)")
        // The bootloader fell back to another configuration.
        try FileManager.default.removeItem(atPath: setup.booted)
        try FileManager.default.createSymbolicLink(atPath: setup.booted, withDestinationPath: other)
        #expect(
            eventually(timeout: 60) { (try? fixture.deployment(setup.id)["status"] as? String) == "Failed" },
            "\(setup.machine.log)")
        let deployment = try fixture.deployment(setup.id)
        #expect(deployment["rolledBack"] as? Bool == true, "\(deployment)")
        #expect(
            (deployment["reason"] as? String ?? "").contains(
                "after the reboot the machine runs \(other), not the deployed configuration \(setup.v2)"),
            "\(deployment)")
        #expect(setup.machine.currentProfileTarget == setup.v1)
        #expect(ToyConfiguration.actions(setup.marker).last == "boot \(setup.v1)")
        #expect(Self.calls(setup.calls) == ["reboot now"])
    }

    @Test func aSlowRollbackAfterACancelLeavesTheAgentServingTheServer() throws {
        let fixture = try DeployFixture()
        let armed = fixture.temp.sub("slow-armed")
        let gate = fixture.temp.sub("slow-gate")
        // Once armed, v1's `boot` (the rollback's) waits for the gate, two minutes at most.
        let slowBoot = """
            if [ "$1" = boot ] && [ -e \(armed) ]; then
              i=0; while [ ! -e \(gate) ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
            fi
            """
        let setup = try rebootingMachine(
            fixture, "slow", window: Self.window(hoursFromNow: 2, 3), v1SwitchScript: slowBoot)
        defer { FileManager.default.createFile(atPath: gate, contents: nil) }
        let v3 = try configuration(fixture, "slow-v3", marker: setup.marker, kernel: "6.1")
        expectWaitsForItsReboot(fixture, setup.id, machine: setup.machine)

        FileManager.default.createFile(atPath: armed, contents: nil)
        try fixture.admin.run(["deploy", "cancel", setup.id])
        #expect(
            eventually(timeout: 60) { ToyConfiguration.actions(setup.marker).last == "boot \(setup.v1)" },
            "\(setup.machine.log)")
        // While the rollback runs, the agent forwards its log and takes a new order, which waits for it.
        #expect(
            eventually(timeout: 30) {
                (try? serverLog(fixture, setup.id, seconds: 2))?.contains(
                    "Rolling back to \(setup.v1) as the configuration to boot")
                    == true
            }, "\(setup.machine.log)")
        let next = try fixture.activate(try fixture.deployJSON(["slow": v3]), ["--async"])
        let nextID = try #require(DeployFixture.deploymentIDs(next.stdoutString)["slow"], "\(next.stdoutString)")
        #expect(
            eventually(timeout: 30) {
                setup.machine.log.contains("deployment \(nextID) waits for deployment \(setup.id) to finish")
            }, "\(setup.machine.log)")
        #expect(try fixture.deployment(setup.id)["status"] as? String == "InProgress")
        #expect(!FileManager.default.fileExists(atPath: gate), "the rollback must still be waiting")

        FileManager.default.createFile(atPath: gate, contents: nil)
        #expect(
            eventually(timeout: 60) { (try? fixture.deployment(setup.id)["status"] as? String) == "Cancelled" },
            "\(setup.machine.log)")
        #expect(try fixture.deployment(setup.id)["rolledBack"] as? Bool == true)
        #expect(
            eventually(timeout: 90) { (try? fixture.deployment(nextID)["status"] as? String) == "Succeeded" },
            "\(setup.machine.log)")
        #expect(setup.machine.currentProfileTarget == v3)
        #expect(Self.calls(setup.calls).isEmpty)
    }

    @Test func aLocalRollbackSupersedesTheDeploymentThatWaitsForItsReboot() throws {
        let fixture = try DeployFixture()
        let setup = try rebootingMachine(fixture, "glass", window: Self.window(hoursFromNow: 2, 3))
        expectWaitsForItsReboot(fixture, setup.id, machine: setup.machine)

        let rollback = try setup.machine.runCapstan([
            "deploy", "local", "rollback", "--state-dir", setup.machine.stateDirectory, "--profiles-dir",
            "/nix/var/nix/profiles",
        ])
        #expect(rollback.status == 0, "\(rollback.stdoutString)\(rollback.stderrString)")
        #expect(
            rollback.stderrString.contains(
                "deployment \(setup.id) waited for a reboot; this rollback supersedes it and the agent reports it Cancelled"
            ),
            "\(rollback.stderrString)")
        #expect(setup.machine.currentProfileTarget == setup.v1)
        #expect(
            eventually(timeout: 60) { (try? fixture.deployment(setup.id)["status"] as? String) == "Cancelled" },
            "\(setup.machine.log)")
        let deployment = try fixture.deployment(setup.id)
        #expect(
            (deployment["reason"] as? String ?? "").contains("superseded by the local rollback local-"), "\(deployment)"
        )
        #expect(deployment["rolledBack"] as? Bool == false, "\(deployment)")

        // The machine reboots into what the operator activated: nothing is confirmed, failed or rolled back.
        try FileManager.default.removeItem(atPath: setup.booted)
        try FileManager.default.createSymbolicLink(atPath: setup.booted, withDestinationPath: setup.v1)
        Thread.sleep(forTimeInterval: 3)
        #expect(try fixture.deployment(setup.id)["status"] as? String == "Cancelled")
        #expect(setup.machine.currentProfileTarget == setup.v1)
        #expect(Self.calls(setup.calls).isEmpty)
        #expect(
            eventually(timeout: 30) { (try? listedAgent(fixture, "glass")["needsReboot"] as? Bool) == false },
            "\(setup.machine.log)")

        // A local action while nothing waits for a reboot says nothing of deployments.
        let again = try setup.machine.runCapstan([
            "deploy", "local", "activate", setup.v2, "--state-dir", setup.machine.stateDirectory, "--profiles-dir",
            "/nix/var/nix/profiles",
        ])
        #expect(again.status == 0, "\(again.stderrString)")
        #expect(!again.stderrString.contains("supersedes"), "\(again.stderrString)")
    }
}
