import CapstanAgent
import CapstanModel
import Foundation
import Logging
import TestSupport
import Testing

/// The steps of a deployment that waits for its reboot, run by a detached runner under the machine's lock.
extension DetachedRunnerTests {
    @Test("a reboot whose runner finds the profile changed by a local action ends the deployment Cancelled, unrebooted")
    func aLocalActionBeforeTheRebootWins() async throws {
        let machine = try ToyMachine()
        var options = ToyConfiguration.Options()
        options.kernel = "6.1"
        let v1 = try ToyConfiguration.build(name: "v1", marker: machine.marker, options: options, in: machine.directory)
        options.kernel = "6.6"
        let v2 = try ToyConfiguration.build(name: "v2", marker: machine.marker, options: options, in: machine.directory)
        try machine.setProfile(v1)
        let booted = machine.directory.sub("booted-system")
        try FileManager.default.createSymbolicLink(atPath: booted, withDestinationPath: v1)
        let calls = machine.directory.sub("reboot-calls")
        let reboot = machine.directory.sub("reboot")
        try "#!/bin/sh\necho reboot >> \(calls)\n".write(toFile: reboot, atomically: true, encoding: .utf8)
        chmod(reboot, 0o755)
        let task = machine.task(v2, serverURL: try TestServer.url)
        let (deployed, _) = try machine.runDeployment(task)
        try #require(deployed.succeeded, "\(deployed)")

        // Held as a local action holds it: the supervisor asks for the reboot, and its runner waits.
        var lock: RunnerLock? = try RunnerLock.acquire(stateDirectory: machine.stateDirectory)
        let configuration = AgentConfiguration(
            name: "toy", serverURL: try TestServer.url, token: "agent-token",
            profilesDirectory: machine.profilesDirectory, stateDirectory: machine.stateDirectory,
            system: TestServer.system, version: "test", runnerExecutable: TestEnvironment.capstanBinary,
            bootedSystemPath: booted, rebootPolicy: .whenNeeded, rebootCommand: [reboot])
        let supervisor = try DeploymentSupervisor(configuration: configuration, logger: Logger(label: "test.reboot"))
        await supervisor.tick()
        #expect(await supervisor.runningDeployment() == task.order.id)
        #expect(FileManager.default.fileExists(atPath: machine.stateDirectory + "/reboot.json"))
        // The local action, which found nothing waiting yet, activates v1 again.
        try machine.setProfile(v1)
        withExtendedLifetime(lock) {}
        lock = nil

        let directory = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: task.order.id)
        try await waitFor("the deployment to end") {
            await supervisor.tick()
            let running = await supervisor.runningDeployment()
            return try directory.result()?.cancelled == true && running == nil
        }
        let outcome = try #require(try directory.result())
        #expect(!outcome.succeeded && !outcome.rolledBack, "\(outcome)")
        #expect(outcome.reason?.contains("superseded by a local action on the machine, which activated \(v1)") == true)
        #expect(!FileManager.default.fileExists(atPath: calls), "the machine must not be rebooted")
        #expect(!FileManager.default.fileExists(atPath: machine.stateDirectory + "/reboot.json"))
        #expect(machine.profileTarget == v1)
        let finished = await supervisor.outgoing().contains {
            if case .finished(let reported) = $0.message { reported.cancelled } else { false }
        }
        #expect(finished)
    }
}
