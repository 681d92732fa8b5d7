import CapstanAgent
import CapstanModel
import Foundation
import TestSupport
import Testing

/// Two-phase activation, health checks, timeouts, cancelling and the GC root, with `capstan deploy run`,
/// real nix and toy configurations whose units a fake `systemctl` lists.
@Suite("Safer activation", .serialized)
struct SaferActivationTests {
    @Test("two phases: test, the checks, then boot; the closure is rooted until the profile holds it")
    func twoPhaseCommitsAfterTheChecks() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let roots = machine.directory.sub("roots-during-test")
        // The roots of the configuration while it is being tested, before the profile holds it.
        let new = try machine.configuration(
            "new",
            extraScript: #"[ "$1" = test ] && nix-store -q --roots "$(readlink -f "$(dirname "$0")/..")" > "#
                + roots)
        try machine.setProfile(old)
        let check = HealthCheck.command(["/bin/sh", "-c", "echo all good"], timeout: .seconds(5))
        let task = machine.task(new, serverURL: try TestServer.url, activation: ActivationSettings(checks: [check]))
        let (outcome, _) = try machine.runDeployment(task)
        #expect(outcome.succeeded, "\(outcome)")
        #expect(machine.switches == ["new test \(task.order.id)", "new boot \(task.order.id)"])
        #expect(machine.profileTarget == new)
        #expect(
            outcome.checks == [CheckResult(check: check.description, passed: true, attempts: 1, output: ["all good"])])
        let directory = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: task.order.id)
        let rootsText = (try? String(contentsOfFile: roots, encoding: .utf8)) ?? ""
        #expect(rootsText.contains("\(directory.gcRoot) -> \(new)"), "roots: \(rootsText)")
        #expect(directory.gcRoots().isEmpty, "the root goes once the profile holds the configuration")
        let log = try machine.log(of: task.order.id)
        #expect(log.contains("Health check \(check): passed (attempt 1): all good"))
        #expect(!log.contains { $0.contains("you did not specify '--add-root'") })
    }

    @Test("a unit that fails after the switch rolls back; one that had failed before does not")
    func failedUnits() throws {
        let machine = try ToyMachine()
        machine.toy.failedUnits = ["legacy.service"]
        let old = try machine.configuration("old", failedUnits: ["legacy.service"])
        let fine = try machine.configuration("fine", failedUnits: ["legacy.service"])
        let breaking = try machine.configuration("breaking", failedUnits: ["legacy.service", "web.service"])
        try machine.setProfile(old)
        let quick = ActivationSettings(grace: .seconds(1))

        let first = machine.task(fine, serverURL: try TestServer.url, activation: quick, checks: [.noFailedUnits])
        let (accepted, _) = try machine.runDeployment(first)
        #expect(accepted.succeeded, "\(accepted)")
        #expect(accepted.checks?.first?.output.contains("failed before the switch too: legacy.service") == true)

        let second = machine.task(breaking, serverURL: try TestServer.url, activation: quick, checks: [.noFailedUnits])
        let (refused, _) = try machine.runDeployment(second)
        #expect(!refused.succeeded)
        #expect(refused.rolledBack)
        #expect(refused.reason?.contains("health check failed") == true, "\(refused)")
        #expect(refused.reason?.contains("systemd no-failed-units") == true, "\(refused)")
        let result = try #require(refused.checks?.first)
        #expect(!result.passed)
        #expect(result.attempts >= 1)
        #expect(result.output.contains("failed since the switch: web.service"))
        #expect(machine.profileTarget == fine)
        #expect(machine.toy.failedUnits == ["legacy.service"], "the previous configuration is active again")
        #expect(
            Array(machine.switches.suffix(2)) == ["breaking test \(second.order.id)", "fine test \(second.order.id)"])
    }

    @Test("a switch that hangs is stopped at the timeout, with its children, and rolled back")
    func hangingSwitchTimesOut() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let seconds = 86_000 + Int.random(in: 0..<400)
        let hanging = try machine.configuration("hanging", extraScript: "[ \"$1\" = test ] && sleep \(seconds)")
        let next = try machine.configuration("next")
        try machine.setProfile(old)
        let task = machine.task(hanging, serverURL: try TestServer.url, activationTimeout: 2)
        let started = Date()
        let (outcome, _) = try machine.runDeployment(task)
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(!outcome.succeeded)
        #expect(outcome.rolledBack)
        #expect(
            outcome.reason?.contains(
                "did not finish within its timeout of 2s (it was at: switch-to-configuration test)") == true,
            "\(outcome)")
        #expect(machine.switches == ["hanging test \(task.order.id)", "old test \(task.order.id)"])
        #expect(machine.profileTarget == old)
        let leftover = try ProcessRunner.run(["/usr/bin/pgrep", "-f", "sleep \(seconds)"])
        #expect(leftover.stdoutString.isEmpty, "the hanging switch's sleep was left running")
        #expect(!RunnerLock.isHeld(stateDirectory: machine.stateDirectory))

        let (after, _) = try machine.runDeployment(machine.task(next, serverURL: try TestServer.url))
        #expect(after.succeeded, "\(after)")
        #expect(machine.profileTarget == next)
    }

    @Test("a check that hangs is stopped when the activation's time is up, and the deployment rolled back")
    func hangingCheckTimesOut() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let new = try machine.configuration("new")
        try machine.setProfile(old)
        let seconds = 88_000 + Int.random(in: 0..<400)
        let hanging = HealthCheck.command(["/bin/sleep", "\(seconds)"], timeout: .seconds(600))
        let task = machine.task(
            new, serverURL: try TestServer.url, activation: ActivationSettings(checks: [hanging], grace: .seconds(600)),
            activationTimeout: 3)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(outcome.rolledBack)
        #expect(outcome.reason?.contains("timeout of 3s (it was at: health checks)") == true, "\(outcome)")
        #expect(machine.switches == ["new test \(task.order.id)", "old test \(task.order.id)"])
        #expect(machine.profileTarget == old)
        #expect(try ProcessRunner.run(["/usr/bin/pgrep", "-f", "sleep \(seconds)"]).stdoutString.isEmpty)
    }

    @Test("a boot entry that cannot be written rolls back, boot entry of the previous configuration included")
    func failingCommitRollsBack() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let new = try machine.configuration("new", extraScript: "[ \"$1\" = boot ] && exit 4")
        try machine.setProfile(old)
        let task = machine.task(new, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(outcome.rolledBack)
        #expect(outcome.reason?.contains("writing its boot entry failed") == true, "\(outcome)")
        let id = task.order.id
        #expect(machine.switches == ["new test \(id)", "new boot \(id)", "old test \(id)", "old boot \(id)"])
        #expect(machine.profileTarget == old)
    }

    @Test("a deployment's activation timeout lowers the agent's, never raises it")
    func deploymentTimeoutOnlyLowers() throws {
        let machine = try ToyMachine()
        let path = "/nix/store/00000000000000000000000000000000-x"
        let lower = machine.task(
            path, serverURL: "http://127.0.0.1:1", activation: ActivationSettings(timeout: .seconds(5)),
            activationTimeout: 600)
        #expect(lower.activationTimeout == .seconds(5))
        let higher = machine.task(
            path, serverURL: "http://127.0.0.1:1", activation: ActivationSettings(timeout: .seconds(3600)),
            activationTimeout: 600)
        #expect(higher.activationTimeout == .seconds(600))
    }

    @Test("cancelled before it starts: nothing is switched")
    func cancelledBeforeTheSwitch() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let new = try machine.configuration("new")
        try machine.setProfile(old)
        let task = machine.task(new, serverURL: try TestServer.url)
        let directory = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: task.order.id)
        try directory.create(task: task)
        try directory.requestCancel()
        let (outcome, _) = try machine.runDeployment(task)
        #expect(outcome.cancelled)
        #expect(!outcome.succeeded)
        #expect(!outcome.rolledBack)
        #expect(outcome.reason == "cancelled before the switch; the machine was not changed")
        #expect(machine.switches.isEmpty)
        #expect(machine.profileTarget == old)
    }

    @Test("cancelled during the activation: the switch is stopped and the previous configuration re-activated")
    func cancelledDuringTheActivation() async throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let started = machine.directory.sub("slow-started")
        let slow = try machine.configuration("slow", extraScript: "[ \"$1\" = test ] && touch \(started) && sleep 60")
        try machine.setProfile(old)
        let task = machine.task(slow, serverURL: try TestServer.url)
        let (directory, runner) = try machine.startDeployment(task)
        defer { if runner.isRunning { kill(runner.processIdentifier, SIGKILL) } }
        #expect(eventually(timeout: 60) { FileManager.default.fileExists(atPath: started) })
        try directory.requestCancel()
        #expect(eventually(timeout: 30) { !runner.isRunning })
        let outcome = try #require(try directory.result())
        #expect(outcome.cancelled)
        #expect(outcome.rolledBack)
        #expect(outcome.reason == "cancelled during the activation", "\(outcome)")
        #expect(machine.switches == ["slow test \(task.order.id)", "old test \(task.order.id)"])
        #expect(machine.profileTarget == old)
    }
}
