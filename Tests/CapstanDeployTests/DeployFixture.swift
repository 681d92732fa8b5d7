import Foundation
import TestSupport

/// A server with a public cache, a push token and an activate token, plus helpers to add
/// agents (each a machine of its own) and to build and push toy configurations.
final class DeployFixture: @unchecked Sendable {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI
    let cacheKey: String
    let activateToken: String
    var machines: [String: AgentMachine] = [:]

    init(
        serverArguments: [String] = [], serverEnvironment: [String: String] = [:], server: ServerProcess? = nil,
        temp: TemporaryDirectory? = nil
    ) throws {
        self.temp = try temp ?? TemporaryDirectory("capstan-deploy")
        self.server =
            try server
            ?? ServerProcess(
                dataDirectory: self.temp.sub("data"), arguments: serverArguments, environment: serverEnvironment)
        admin = CapstanCLI(url: self.server.url, token: try self.server.adminToken)
        if let existing = try? admin.run(["cache", "info", "fleet", "--json"], check: false), existing.status == 0,
            let object = try JSONSerialization.jsonObject(with: existing.stdout) as? [String: Any],
            let key = object["publicKey"] as? String
        {
            cacheKey = key
        } else {
            cacheKey = try admin.createCache("fleet")
        }
        activateToken = try admin.createToken(kind: "activate")
    }

    /// Registers an agent and starts it on its own machine.
    @discardableResult
    func addAgent(_ name: String, start: Bool = true, arguments: [String] = []) throws -> AgentMachine {
        let created = try admin.run(["agent", "create", name, "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: created) as? [String: Any]
        guard let token = object?["token"] as? String else { throw TestFailure("no token in \(created)") }
        let machine = try AgentMachine(name: name, token: token, serverURL: server.url, in: temp, arguments: arguments)
        machines[name] = machine
        if start { try machine.start() }
        return machine
    }

    /// Builds a toy configuration, pushes its closure, and deletes it locally so that agents
    /// must substitute it from the cache.
    func configuration(
        _ name: String, marker: String, options: ToyConfiguration.Options = .init()
    ) throws -> String {
        let path = try ToyConfiguration.build(name: name, marker: marker, options: options, in: temp)
        try admin.run(["push", "fleet", path])
        return path
    }

    /// A deploy.json file; `extra` adds fields such as `checks` or `activationTimeout`.
    func deployJSON(_ agents: [String: String], rollbackScript: [String: String]? = nil, extra: [String: Any] = [:])
        throws -> String
    {
        var object: [String: Any] = extra
        object["agents"] = agents
        if let rollbackScript { object["rollbackScript"] = rollbackScript }
        let file = temp.sub("deploy-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: file))
        return file
    }

    /// Runs `capstan deploy activate` with the activate token.
    func activate(_ file: String, _ extra: [String] = []) throws -> ProcessResult {
        try admin.with(token: activateToken).run(["deploy", "activate", file] + extra, check: false)
    }

    func marker(_ name: String) -> String { temp.sub("switched-\(name)-\(UUID().uuidString)") }

    static var system: String {
        (try? ProcessRunner.nix(["nix-instantiate", "--eval", "--raw", "--expr", "builtins.currentSystem"]).stdoutString)
            ?? "x86_64-linux"
    }

    func deployment(_ id: String) throws -> [String: Any] {
        let output = try admin.run(["deploy", "status", id, "--json"]).stdout
        return try JSONSerialization.jsonObject(with: output) as? [String: Any] ?? [:]
    }

    /// Deployment ids from activate's "NAME: deployment #N URL" lines.
    static func deploymentIDs(_ output: String) -> [String: String] {
        var ids: [String: String] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ")
            guard parts.count == 4, parts[0].hasSuffix(":"), parts[1] == "deployment",
                let id = parts[3].split(separator: "/").last
            else { continue }
            ids[String(parts[0].dropLast())] = String(id)
        }
        return ids
    }
}
