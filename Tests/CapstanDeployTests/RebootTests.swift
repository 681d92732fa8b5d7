import Foundation
import TestSupport
import Testing

/// Reboots end to end: agents on machines with their own `/nix` compare a booted-system link of the
/// test's with toy configurations whose kernels differ, report it, and reboot in their maintenance window.
@Suite(.serialized) struct RebootTests {
    /// A configuration of `kernel`, pushed to the fixture's cache.
    private func configuration(_ fixture: DeployFixture, _ name: String, marker: String, kernel: String) throws
        -> String
    {
        var options = ToyConfiguration.Options()
        options.kernel = kernel
        return try fixture.configuration(name, marker: marker, options: options)
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

    /// `HH:MM-HH:MM` from `start` to `end` hours from now, in local time (as the agent reads it).
    private static func window(hoursFromNow start: Int, _ end: Int) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm"
        return formatter.string(from: Date().addingTimeInterval(Double(start) * 3600)) + "-"
            + formatter.string(from: Date().addingTimeInterval(Double(end) * 3600))
    }

    /// An agent with `--reboot-policy when-needed` whose reboot command records its calls, running v1
    /// (kernel 6.1, booted) and given v2 (kernel 6.6), which waits for the reboot.
    private func rebootingMachine(_ fixture: DeployFixture, _ name: String, window: String) throws -> (
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
        let v1 = try configuration(fixture, "\(name)-v1", marker: marker, kernel: "6.1")
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
        let log = try ProcessRunner.run(
            [
                "curl", "-s", "--max-time", "20", "-H", "Authorization: Bearer \(try fixture.server.adminToken)",
                "\(fixture.server.url)/api/v1/deployments/\(setup.id)/log",
            ],
            check: true
        ).stdoutString.replacingOccurrences(of: "\\/", with: "/")
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
}
