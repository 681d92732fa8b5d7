import CapstanAgent
import CapstanModel
import Foundation
import NixCore
import TestSupport

/// One toy machine for `capstan deploy run`: its profiles, its state directory and its toy system;
/// its configurations are `ToyConfiguration`s (TestSupport) recording their switches in `marker`.
struct ToyMachine {
    let directory: TemporaryDirectory
    let nonce = NixFixtures.nonce()
    /// Failed units and an HTTP service for the configurations to change.
    let toy: ToySystem
    var marker: String { directory.sub("switch-marker") }
    var profilesDirectory: String { directory.sub("profiles") }
    var profilePath: String { profilesDirectory + "/system" }
    var stateDirectory: String { directory.sub("state") }

    init() throws {
        directory = try TemporaryDirectory("capstan-agent")
        toy = try ToySystem(directory: directory.sub("toy"))
    }

    /// Builds a configuration whose switch exits `switchExit` after running `extraScript` (see
    /// `ToyConfiguration.Options.switchScript`); `system`, `failedUnits` and `httpPort` as there.
    func configuration(
        _ label: String, switchExit: Int = 0, system: String? = nil, extraScript: String = "",
        failedUnits: [String]? = nil, httpPort: Int? = nil
    ) throws -> String {
        var options = ToyConfiguration.Options()
        options.switchExitCode = switchExit
        options.system = system
        options.switchScript = extraScript
        options.failedUnits = failedUnits
        options.httpPort = httpPort
        return try ToyConfiguration.build(name: label, marker: marker, options: options, in: directory)
    }

    /// An executable store path that exits `status`: a deploy.json rollback script.
    func rollbackScript(exit status: Int) throws -> String {
        try ToyConfiguration.script(exitCode: status, in: directory)
    }

    /// What the switches ran, in order: "<label> <action> <deployment id>".
    var switches: [String] { ToyConfiguration.switches(marker + ".deployments") }

    /// The store path the profile points at, nil when there is none.
    var profileTarget: String? {
        guard let resolved = try? URL(fileURLWithPath: profilePath).resolvingSymlinksInPath().path,
            FileManager.default.fileExists(atPath: profilePath)
        else { return nil }
        return resolved
    }

    /// Sets the profile as a finished earlier deployment would have (without activating).
    func setProfile(_ storePath: String) throws {
        try FileManager.default.createDirectory(atPath: profilesDirectory, withIntermediateDirectories: true)
        try ProcessRunner.nix(["nix-env", "-p", profilePath, "--set", storePath])
    }

    func task(
        _ storePath: String, id: String = NixFixtures.nonce(), rollbackScript: String? = nil,
        cache: AgentCache? = nil, serverURL: String, verifyTimeout: Double = 20, activation: ActivationSettings? = nil,
        mode: ActivationMode = .twoPhase, activationTimeout: Double = 600, checks: [HealthCheck] = []
    ) -> DeploymentTask {
        DeploymentTask(
            order: DeploymentOrder(
                id: id, index: 1, storePath: .known(storePath), rollbackScript: rollbackScript.map(StorePath.known),
                activation: activation),
            cache: cache, token: "agent-token-\(nonce)", serverURL: serverURL, profilePath: profilePath,
            system: TestServer.system, verifyTimeoutSeconds: verifyTimeout, activationMode: mode,
            activationTimeoutSeconds: activationTimeout, checks: checks)
    }

    /// What the machine's runners run with: container-friendly Nix and the toy system.
    var environment: [String: String] { TestEnvironment.nixEnvironment.merging(toy.environment) { $1 } }

    /// Prepares the deployment directory as the agent does and starts `capstan deploy run` without waiting.
    func startDeployment(_ task: DeploymentTask) throws -> (DeploymentDirectory, Process) {
        let directory = try DeploymentDirectory(stateDirectory: stateDirectory, id: task.order.id)
        try directory.create(task: task)
        let runner = Process()
        runner.executableURL = URL(fileURLWithPath: TestEnvironment.capstanBinary)
        runner.arguments = ["deploy", "run", "--state-dir", stateDirectory, "--id", task.order.id]
        runner.environment = environment
        runner.standardInput = FileHandle.nullDevice
        runner.standardOutput = FileHandle.nullDevice
        runner.standardError = FileHandle.nullDevice
        try runner.run()
        return (directory, runner)
    }

    /// Prepares the deployment directory as the agent does and runs `capstan deploy run` to the end.
    @discardableResult
    func runDeployment(_ task: DeploymentTask) throws -> (DeploymentOutcome, ProcessResult) {
        let directory = try DeploymentDirectory(stateDirectory: stateDirectory, id: task.order.id)
        try directory.create(task: task)
        let result = try ProcessRunner.run(
            [TestEnvironment.capstanBinary, "deploy", "run", "--state-dir", stateDirectory, "--id", task.order.id],
            environment: environment)
        guard let outcome = try directory.result() else {
            throw TestFailure(
                "no result.json after `capstan deploy run` (exit \(result.status)): \(result.stderrString)")
        }
        return (outcome, result)
    }

    func log(of id: String) throws -> [String] {
        try DeploymentDirectory(stateDirectory: stateDirectory, id: id).logLines().map(\.line)
    }
}

/// One real `capstan serve` for the suite: the runner checks `/health` after each activation.
enum TestServer {
    static let shared: Result<(ServerProcess, TemporaryDirectory), any Error> = Result {
        let directory = try TemporaryDirectory("capstan-agent-server")
        let server = try ServerProcess(dataDirectory: directory.sub("data"))
        // A static is never released: the server would outlive the tests.
        atexit { TestServer.stopAtExit() }
        return (server, directory)
    }

    static func stopAtExit() {
        if case .success(let (server, _)) = shared { server.kill() }
    }

    static var url: String {
        get throws { try shared.get().0.url }
    }

    static let system: String = (try? AgentConfiguration.detectSystem()) ?? "x86_64-linux"
}
