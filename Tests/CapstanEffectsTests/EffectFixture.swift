import Foundation
import TestSupport

/// A project directory with a `default.nix` that imports Capstan's `nix/` library without nixpkgs,
/// a secrets file, and `capstan effect run` to run its effects; optionally a server with agents.
final class EffectFixture: @unchecked Sendable {
    let temp: TemporaryDirectory
    let project: String
    let secretsFile: String
    var machines: [String: AgentMachine] = [:]
    private var deployment: DeploymentServer?

    struct DeploymentServer {
        var server: ServerProcess
        var admin: CapstanCLI
        var activateToken: String
    }

    init() throws {
        temp = try TemporaryDirectory("capstan-effect")
        project = temp.sub("project")
        secretsFile = temp.sub("config/secrets.json")
        try FileManager.default.createDirectory(atPath: project, withIntermediateDirectories: true)
    }

    /// The repository's `nix/` directory.
    static let library: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("nix").path
    }()

    /// The built `capstan` in the store, so that effects can call it inside their sandbox.
    static let capstanInStore: String = {
        (try? ProcessRunner.nix(["nix-store", "--add", TestEnvironment.capstanBinary]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)) ?? "capstan-not-in-store"
    }()

    /// Writes `default.nix`: `body` is an attribute set expression that may use `lib` (mkEffect,
    /// runCachixDeploy) and `mk` (a plain derivation from a shell script).
    func writeProject(_ body: String) throws {
        let expression = """
            let
              lib = import \(Self.library) {
                pkgs = null;
                capstan = builtins.storePath "\(Self.capstanInStore)";
              };
              \(NixFixtures.mkBinding)
            in
            \(body)
            """
        try expression.write(toFile: project + "/default.nix", atomically: true, encoding: .utf8)
    }

    /// Runs the built `capstan` in the project directory, without any server or token in the environment.
    @discardableResult
    func capstan(_ arguments: [String], input: Data? = nil) throws -> ProcessResult {
        var environment = TestEnvironment.nixEnvironment
        for key in [
            "CAPSTAN_TOKEN", "CAPSTAN_URL", "CAPSTAN_ACTIVATE_TOKEN", "CACHIX_ACTIVATE_TOKEN",
            "HERCULES_CI_SECRETS_JSON",
        ] {
            environment.removeValue(forKey: key)
        }
        environment["XDG_CONFIG_HOME"] = temp.sub("config-home")
        return try ProcessRunner.run(
            [TestEnvironment.capstanBinary] + arguments, environment: environment, input: input,
            currentDirectory: project)
    }

    /// `capstan effect run ATTR` with this fixture's secrets file.
    func runEffect(_ attribute: String, _ extra: [String] = []) throws -> ProcessResult {
        try capstan(["effect", "run", attribute, "--secrets", secretsFile] + extra)
    }

    func addSecret(_ name: String, _ arguments: [String]) throws {
        let result = try capstan(["secret", "add", name, "--secrets", secretsFile] + arguments)
        guard result.status == 0 else { throw TestFailure("secret add failed: \(result.stderrString)") }
    }

    // MARK: Deployments

    /// Starts a server with a public cache `fleet` and an activate token.
    @discardableResult
    func startServer() throws -> DeploymentServer {
        if let deployment { return deployment }
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("fleet")
        let started = DeploymentServer(
            server: server, admin: admin, activateToken: try admin.createToken(kind: "activate"))
        deployment = started
        return started
    }

    var server: DeploymentServer {
        get throws {
            guard let deployment else { throw TestFailure("startServer() first") }
            return deployment
        }
    }

    /// The activate secret, as a person would add it: the token, and the server's URL.
    func addActivateSecret(named name: String = "default-cachix-activate") throws {
        let server = try self.server
        try addSecret(
            name, ["--string", "cachixActivateToken", server.activateToken, "--string", "url", server.server.url])
    }

    @discardableResult
    func addAgent(_ name: String, start: Bool = true) throws -> AgentMachine {
        let server = try self.server
        let created = try server.admin.run(["agent", "create", name, "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: created) as? [String: Any]
        guard let token = object?["token"] as? String else { throw TestFailure("no token in \(created)") }
        let machine = try AgentMachine(name: name, token: token, serverURL: server.server.url, in: temp)
        machines[name] = machine
        if start { try machine.start() }
        return machine
    }

    /// A toy configuration built locally; `push` also pushes its closure to `fleet`.
    func configuration(
        _ name: String, marker: String, options: ToyConfiguration.Options = .init(), push: Bool = true
    ) throws -> String {
        let path = try ToyConfiguration.build(name: name, marker: marker, options: options, in: temp)
        if push { try self.server.admin.run(["push", "fleet", path]) }
        return path
    }

    func marker(_ name: String) -> String { temp.sub("switched-\(name)-\(UUID().uuidString)") }

    /// A Nix expression for an already-built store path.
    static func storePath(_ path: String) -> String { "builtins.storePath \"\(path)\"" }
}

extension ProcessResult {
    var output: String { stdoutString + stderrString }
}
