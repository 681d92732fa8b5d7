import CapstanAgent
import CapstanModel
import Foundation
import Logging
import NixCore
import TestSupport
import Testing

/// Runners as separate processes: started by the supervisor, surviving their parent, dying without blocking.
@Suite("Detached runners", .serialized)
struct DetachedRunnerTests {
    func supervisor(for machine: ToyMachine) throws -> DeploymentSupervisor {
        let configuration = AgentConfiguration(
            name: "toy", serverURL: try TestServer.url, token: "agent-token",
            profilesDirectory: machine.profilesDirectory,
            stateDirectory: machine.stateDirectory, system: TestServer.system, verifyTimeout: .seconds(20),
            version: "test", runnerExecutable: TestEnvironment.capstanBinary)
        return try DeploymentSupervisor(configuration: configuration, logger: Logger(label: "test.supervisor"))
    }

    // Generous: a runner is a process of its own, and a loaded machine (CI beside other builds) is slow.
    func waitFor(_ what: String, timeout: Double = 180, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("timed out waiting for \(what)")
    }

    @Test("the supervisor runs an order detached, then reports started, logs, closure size and outcome once")
    func supervisorRunsAndReports() async throws {
        let machine = try ToyMachine()
        let new = try machine.configuration("new")
        let supervisor = try supervisor(for: machine)
        let order = DeploymentOrder(id: NixFixtures.nonce(), index: 1, storePath: .known(new), rollbackScript: nil)
        await supervisor.receive(order)
        #expect(await supervisor.runningDeployment() == order.id)
        let directory = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: order.id)
        try await waitFor("the runner's result") {
            await supervisor.tick()
            let running = await supervisor.runningDeployment()
            return try directory.result() != nil && running == nil
        }
        let messages = await supervisor.outgoing()
        guard case .started(order.id, nil) = messages.first?.message else {
            throw TestFailure("first message is not started: \(messages.map(\.message))")
        }
        guard case .finished(let outcome) = messages.last?.message else {
            throw TestFailure("last message is not finished: \(messages.map(\.message))")
        }
        #expect(outcome.succeeded, "\(outcome)")
        let logged = messages.flatMap { item -> [String] in
            if case .log(_, let lines) = item.message { return lines.map(\.line) }
            return []
        }
        #expect(logged.contains("switch of new says hello"))
        #expect(messages.contains { if case .started(_, .some) = $0.message { true } else { false } })
        for item in messages { await supervisor.sent(item) }
        #expect(await supervisor.outgoing().isEmpty)
        #expect(machine.switches == ["new test \(order.id)", "new boot \(order.id)"])
    }

    @Test("orders arriving during a deployment: only the newest runs after it")
    func newestWaitingOrderWins() async throws {
        let machine = try ToyMachine()
        let slow = try machine.configuration("slow", extraScript: "[ $1 = test ] && sleep 2")
        let skipped = try machine.configuration("skipped")
        let newest = try machine.configuration("newest")
        let supervisor = try supervisor(for: machine)
        let orders = [slow, skipped, newest].enumerated().map {
            DeploymentOrder(
                id: NixFixtures.nonce(), index: $0.offset + 1, storePath: .known($0.element), rollbackScript: nil)
        }
        for order in orders { await supervisor.receive(order) }
        let last = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: orders[2].id)
        try await waitFor("the newest deployment") {
            await supervisor.tick()
            return try last.result() != nil
        }
        #expect(
            machine.switches == [
                "slow test \(orders[0].id)", "slow boot \(orders[0].id)", "newest test \(orders[2].id)",
                "newest boot \(orders[2].id)",
            ])
        #expect(!(try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: orders[1].id)).exists)
        #expect(machine.profileTarget == newest)
    }

    @Test("a runner whose parent process group is killed finishes and writes its result")
    func runnerSurvivesItsParent() async throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        // The activation kills the process group of whoever started the runner, as a service restart would.
        let new = try machine.configuration("new", extraScript: "/bin/kill -KILL -- -$TOY_PARENT_PGID; sleep 1")
        try machine.setProfile(old)
        let task = machine.task(new, serverURL: try TestServer.url)
        let directory = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: task.order.id)
        try directory.create(task: task)
        let script = """
            export TOY_PARENT_PGID=$(ps -o pgid= $$ | tr -d ' ')
            '\(TestEnvironment.capstanBinary)' deploy run --state-dir '\(machine.stateDirectory)' --id '\(task.order.id)'
            echo parent-survived > '\(machine.directory.sub("parent"))'
            """
        let parent = try ProcessRunner.run(
            ["setsid", "--fork", "--wait", "sh", "-c", script], environment: TestEnvironment.nixEnvironment)
        #expect(parent.status != 0, "the parent was meant to be killed")
        try await waitFor("the runner's result") { try directory.result() != nil }
        let outcome = try #require(try directory.result())
        #expect(outcome.succeeded, "\(outcome)")
        #expect(machine.profileTarget == new)
        #expect(!FileManager.default.fileExists(atPath: machine.directory.sub("parent")))
    }

    @Test("a killed runner leaves no lock behind and gets a failed result")
    func killedRunnerDoesNotBlock() async throws {
        let machine = try ToyMachine()
        let switchPID = machine.directory.sub("hanging.pid")
        let hanging = try machine.configuration("hanging", extraScript: "echo $$ > \(switchPID); exec sleep 300")
        let next = try machine.configuration("next")
        let task = machine.task(hanging, serverURL: try TestServer.url)
        let (directory, runner) = try machine.startDeployment(task)
        try await waitFor("the hanging switch") { FileManager.default.fileExists(atPath: switchPID) }
        #expect(RunnerLock.isHeld(stateDirectory: machine.stateDirectory))
        kill(runner.processIdentifier, SIGKILL)
        runner.waitUntilExit()
        #expect(!RunnerLock.isHeld(stateDirectory: machine.stateDirectory))

        let supervisor = try supervisor(for: machine)
        #expect(await supervisor.runningDeployment() == nil)
        await supervisor.tick()
        let killed = try #require(try directory.result())
        #expect(!killed.succeeded)
        #expect(killed.reason == "the deployment process ended without a result (it was killed)")

        let started = Date()
        let (outcome, _) = try machine.runDeployment(machine.task(next, serverURL: try TestServer.url))
        #expect(outcome.succeeded, "\(outcome)")
        #expect(Date().timeIntervalSince(started) < 60)
        // The switch of the killed runner still sleeps; it must not have kept the lock.
        if let text = try? String(contentsOfFile: switchPID, encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            kill(pid, SIGKILL)
        }
    }
}
