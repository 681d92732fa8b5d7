import Foundation
import TestSupport

/// A server whose caches also answer as `<cache>.localhost:PORT`, a public cache `fleet`, an
/// activate token, and the conformance client (conformance/cachix_client.py) to talk to it.
final class CachixFixture: @unchecked Sendable {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI
    let cacheKey: String
    let activateToken: String
    private var agents: [Process] = []

    init() throws {
        temp = try TemporaryDirectory("capstan-cachix")
        let port = try FreePort.find()
        server = try ServerProcess(
            dataDirectory: temp.sub("data"), port: port, arguments: ["--cache-host", "localhost:\(port)"])
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
        cacheKey = try admin.createCache("fleet")
        activateToken = try admin.createToken(kind: "activate")
    }

    deinit {
        for agent in agents where agent.isRunning { agent.terminate() }
    }

    /// `http://fleet.localhost:PORT`: the cache as cachix agents substitute from it.
    var hostedCacheURL: String { "http://fleet.localhost:\(server.port)" }

    /// Registers an agent in the workspace of `cli` and returns its token.
    func agentToken(_ name: String, cli: CapstanCLI? = nil) throws -> String {
        let created = try (cli ?? admin).run(["agent", "create", name, "--json"]).stdout
        guard let token = (try JSONSerialization.jsonObject(with: created) as? [String: Any])?["token"] as? String else {
            throw TestFailure("no token in \(String(decoding: created, as: UTF8.self))")
        }
        return token
    }

    func deployJSON(_ agents: [String: String], rollbackScript: [String: String]? = nil) throws -> String {
        var object: [String: Any] = ["agents": agents]
        if let rollbackScript { object["rollbackScript"] = rollbackScript }
        let file = temp.sub("deploy-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// Runs the conformance client to completion.
    func client(_ arguments: [String], environment: [String: String] = [:]) throws -> ClientRun {
        var env = TestEnvironment.nixEnvironment
        env.merge(environment) { $1 }
        let result = try ProcessRunner.run(
            [try Self.python, Self.script, "--host", server.url] + arguments, environment: env)
        return ClientRun(result: result)
    }

    /// Starts the client as an agent in the background; its events go to the returned file.
    func startAgent(_ name: String, token: String, deployments: Int) throws -> String {
        let output = temp.sub("agent-\(name)-\(UUID().uuidString).jsonl")
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.python)
        // The host name the caches are served under, as a real agent's --host would be.
        process.arguments = [
            Self.script, "--host", "http://localhost:\(server.port)", "agent", name, "--deployments", String(deployments), "--work-dir",
            temp.path,
        ]
        var env = TestEnvironment.nixEnvironment
        env["CACHIX_AGENT_TOKEN"] = token
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: output + ".stderr").creatingFile())
        process.standardInput = FileHandle.nullDevice
        try process.run()
        agents.append(process)
        return output
    }

    static func events(in file: String) -> [[String: Any]] {
        ClientRun.parse((try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
    }

    static func log(of file: String) -> String {
        ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
            + ((try? String(contentsOfFile: file + ".stderr", encoding: .utf8)) ?? "")
    }

    /// Adds a small file to the store: a valid store path for deploy.json.
    func storePath(_ label: String) throws -> String {
        try NixFixtures.addToStore(try NixFixtures.write("\(label) \(NixFixtures.nonce())\n", named: label, in: temp))
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("conformance/cachix_client.py").path

    /// A Python 3 that has the `websockets` package (scripts/test installs Debian's).
    static var python: String {
        get throws {
            for candidate in ["/usr/bin/python3", "python3"] {
                if let result = try? ProcessRunner.run([candidate, "-c", "import websockets"]), result.status == 0 {
                    return candidate
                }
            }
            throw TestFailure("no python3 with the websockets package; apt-get install python3-websockets")
        }
    }

    static var system: String {
        (try? ProcessRunner.nix(["nix-instantiate", "--eval", "--raw", "--expr", "builtins.currentSystem"]).stdoutString)
            ?? "x86_64-linux"
    }
}

/// What one run of the conformance client printed: its JSON-line events and its exit status.
struct ClientRun {
    var result: ProcessResult
    var status: Int32 { result.status }
    var events: [[String: Any]] { Self.parse(result.stdoutString) }
    var output: String { result.stdoutString + result.stderrString }

    func events(_ kind: String) -> [[String: Any]] { events.filter { $0["event"] as? String == kind } }

    static func parse(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }
}

extension URL {
    fileprivate func creatingFile() -> URL {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return self
    }
}
