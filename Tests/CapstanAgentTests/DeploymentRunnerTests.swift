import CapstanAgent
import CapstanModel
import Foundation
import NixCore
import TestSupport
import Testing

/// `capstan deploy run` against real nix, a temporary profiles directory and toy configurations.
@Suite("Deployment runner", .serialized)
struct DeploymentRunnerTests {
    @Test(
        "a deployment switches the profile and activates once: test then boot in two phases, switch otherwise",
        arguments: [ActivationMode.twoPhase, .switch])
    func success(mode: ActivationMode) throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let new = try machine.configuration("new")
        try machine.setProfile(old)
        let task = machine.task(new, serverURL: try TestServer.url, mode: mode)
        let (outcome, process) = try machine.runDeployment(task)
        #expect(outcome.succeeded, "\(outcome) \(process.stderrString)")
        #expect(process.status == 0)
        #expect(outcome.currentStorePath?.path == new)
        #expect(outcome.rolledBack == false)
        #expect(machine.profileTarget == new)
        let actions = mode == .switch ? ["switch"] : ["test", "boot"]
        #expect(machine.switches == actions.map { "new \($0) \(task.order.id)" })
        let log = try machine.log(of: task.order.id)
        #expect(log.contains("switch of new says hello"))
        #expect(outcome.checks == nil)
        // The success line is the server's to write, once, at the end of the deployment's log.
        #expect(!log.contains { $0.hasPrefix("Successfully activated the deployment") })
        let directory = try DeploymentDirectory(stateDirectory: machine.stateDirectory, id: task.order.id)
        let closureSize = try #require(try directory.started()?.closureSize)
        #expect(closureSize > 0)
    }

    @Test(
        "a failing switch rolls back to the previous configuration and re-activates it the same way",
        arguments: [ActivationMode.twoPhase, .switch])
    func failingSwitchRollsBack(mode: ActivationMode) throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let broken = try machine.configuration("broken", switchExit: 3)
        try machine.setProfile(old)
        let task = machine.task(broken, serverURL: try TestServer.url, mode: mode)
        let (outcome, process) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(process.status == 1)
        #expect(outcome.rolledBack)
        #expect(outcome.currentStorePath?.path == old)
        #expect(outcome.reason?.contains("activation failed") == true, "\(outcome)")
        #expect(outcome.reason?.contains("status 3") == true, "\(outcome)")
        #expect(machine.profileTarget == old)
        let action = mode == .switch ? "switch" : "test"
        #expect(machine.switches == ["broken \(action) \(task.order.id)", "old \(action) \(task.order.id)"])
        #expect(try machine.log(of: task.order.id).last?.hasPrefix("Failed to activate the deployment") == true)
    }

    @Test("a rollback script that exits 1 rolls the deployment back")
    func rollbackScriptRejects() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let new = try machine.configuration("new")
        let check = try machine.rollbackScript(exit: 1)
        try machine.setProfile(old)
        let task = machine.task(new, rollbackScript: check, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(outcome.rolledBack)
        #expect(outcome.reason?.contains("rollback script") == true, "\(outcome)")
        #expect(machine.profileTarget == old)
        #expect(machine.switches == ["new test \(task.order.id)", "old test \(task.order.id)"])
    }

    @Test("a rollback script that exits 0 lets the deployment succeed")
    func rollbackScriptAccepts() throws {
        let machine = try ToyMachine()
        let new = try machine.configuration("new")
        let check = try machine.rollbackScript(exit: 0)
        let task = machine.task(new, rollbackScript: check, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(outcome.succeeded, "\(outcome)")
        #expect(try machine.log(of: task.order.id).contains { $0.hasPrefix("health check ") })
    }

    @Test("a server that does not answer after the switch rolls the deployment back")
    func unreachableServerRollsBack() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let new = try machine.configuration("new")
        try machine.setProfile(old)
        let closedPort = try FreePort.find()
        let task = machine.task(new, serverURL: "http://127.0.0.1:\(closedPort)", verifyTimeout: 2)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(outcome.rolledBack)
        #expect(outcome.reason?.contains("/health did not answer within 2 s") == true, "\(outcome)")
        #expect(machine.profileTarget == old)
    }

    @Test("a failing first deployment says there is nothing to roll back to")
    func firstDeploymentFails() throws {
        let machine = try ToyMachine()
        let broken = try machine.configuration("broken", switchExit: 1)
        let task = machine.task(broken, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(!outcome.rolledBack)
        #expect(
            outcome.reason?.hasSuffix("nothing to roll back to: this was the agent's first deployment") == true,
            "\(outcome)")
        #expect(machine.switches == ["broken test \(task.order.id)"])
        #expect(machine.profileTarget == nil, "two phases set the profile only once the configuration is healthy")
    }

    @Test("a configuration built for another platform is refused before switching")
    func wrongSystemRefused() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        let foreign = try machine.configuration("foreign", system: "aarch64-darwin")
        try machine.setProfile(old)
        let task = machine.task(foreign, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(!outcome.rolledBack)
        #expect(
            outcome.reason == "\(foreign) is built for aarch64-darwin, this agent runs \(TestServer.system); "
                + "build the configuration for \(TestServer.system)")
        #expect(outcome.currentStorePath?.path == old)
        #expect(machine.profileTarget == old)
        #expect(machine.switches.isEmpty)
    }

    @Test("a path missing from the cache fails before switching and names the path")
    func unrealisablePathFails() throws {
        let machine = try ToyMachine()
        let old = try machine.configuration("old")
        try machine.setProfile(old)
        let missing = "/nix/store/00000000000000000000000000000000-capstan-missing-\(machine.nonce)"
        let task = machine.task(missing, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(!outcome.succeeded)
        #expect(!outcome.rolledBack)
        #expect(outcome.reason?.contains(missing) == true, "\(outcome)")
        #expect(machine.profileTarget == old)
    }

    @Test("the runner substitutes the closure from the cache the server named")
    func realisesFromCache() throws {
        let machine = try ToyMachine()
        let new = try machine.configuration("cached")
        let closure = try NixFixtures.closure(of: new)
        #expect(closure.count == 2)
        let keyName = "toy-cache-\(machine.nonce)"
        let secretKey = machine.directory.sub("cache.secret")
        let generated = try ProcessRunner.nix([
            "nix-store", "--generate-binary-cache-key", keyName, secretKey, machine.directory.sub("cache.public"),
        ])
        _ = generated
        let publicKey = try String(contentsOfFile: machine.directory.sub("cache.public"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let cacheDirectory = machine.directory.sub("cache")
        try ProcessRunner.nix(["nix", "copy", "--to", "file://\(cacheDirectory)?secret-key=\(secretKey)", new])
        try NixFixtures.delete(closure)
        let cache = AgentCache(name: "toy", url: "file://\(cacheDirectory)", publicKey: publicKey, isPublic: true)
        let task = machine.task(new, cache: cache, serverURL: try TestServer.url)
        let (outcome, _) = try machine.runDeployment(task)
        #expect(outcome.succeeded, "\(outcome)")
        #expect(closure.allSatisfy(NixFixtures.isValid))
        #expect(machine.switches == ["cached test \(task.order.id)", "cached boot \(task.order.id)"])
    }
}
