import Foundation
import NixCore

/// A deploy.json, as Cachix Deploy defines it: which store path each agent should run, and
/// optionally a health-check script per system.
public struct DeploySpec: Codable, Sendable, Equatable {
    public var agents: [String: String]
    public var rollbackScript: [String: String]?

    public init(agents: [String: String], rollbackScript: [String: String]? = nil) {
        self.agents = agents
        self.rollbackScript = rollbackScript
    }

    /// Parses and checks a deploy.json; errors name the file's field and say what to fix.
    public static func parse(_ data: Data, source: String = "deploy.json") throws(DeploySpecError) -> DeploySpec {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw DeploySpecError("\(source): not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else {
            throw DeploySpecError("\(source): expected a JSON object with an \"agents\" field")
        }
        for key in root.keys where key != "agents" && key != "rollbackScript" {
            throw DeploySpecError("\(source): unknown field \"\(key)\"; only \"agents\" and \"rollbackScript\" are allowed")
        }
        guard let agentsValue = root["agents"] else {
            throw DeploySpecError("\(source): missing \"agents\": {\"<agent name>\": \"/nix/store/…\"}")
        }
        let agents = try stringMap(agentsValue, field: "agents", source: source)
        guard !agents.isEmpty else { throw DeploySpecError("\(source): \"agents\" is empty; name at least one agent") }
        var rollback: [String: String]?
        if let value = root["rollbackScript"], !(value is NSNull) {
            rollback = try stringMap(value, field: "rollbackScript", source: source)
        }
        let spec = DeploySpec(agents: agents, rollbackScript: rollback)
        try spec.validate(source: source)
        return spec
    }

    public func validate(source: String = "deploy.json") throws(DeploySpecError) {
        for (name, path) in agents.sorted(by: { $0.key < $1.key }) {
            do {
                try ResourceName.validate(name, what: "agent")
            } catch {
                throw DeploySpecError("\(source): agents: \(error.description)")
            }
            guard (try? StorePath(parsing: path)) != nil else {
                throw DeploySpecError("\(source): agents.\(name): \"\(path)\" is not a store path (/nix/store/<hash>-<name>)")
            }
        }
        for (system, path) in (rollbackScript ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard (try? StorePath(parsing: path)) != nil else {
                throw DeploySpecError(
                    "\(source): rollbackScript.\(system): \"\(path)\" is not a store path (/nix/store/<hash>-<name>)")
            }
        }
    }

    private static func stringMap(_ value: Any, field: String, source: String) throws(DeploySpecError) -> [String: String] {
        guard let map = value as? [String: Any] else {
            throw DeploySpecError("\(source): \"\(field)\" must be an object of names to store paths")
        }
        var result: [String: String] = [:]
        for (key, item) in map {
            guard let text = item as? String else {
                throw DeploySpecError("\(source): \(field).\(key) must be a string (a store path)")
            }
            result[key] = text
        }
        return result
    }
}

public struct DeploySpecError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
