import Foundation
import NixCore

/// A deploy.json, as Cachix Deploy defines it: which store path each agent should run, and
/// optionally a health-check script per system. Capstan adds health checks for every agent
/// (`checks`) or one (`agentChecks`), their `grace` period, an `activationTimeout` and a `rollout` in waves.
public struct DeploySpec: Codable, Sendable, Equatable {
    public var agents: [String: StorePath]
    public var rollbackScript: [String: StorePath]?
    public var checks: [HealthCheck]?
    public var agentChecks: [String: [HealthCheck]]?
    public var grace: TimeSpan?
    public var activationTimeout: TimeSpan?
    public var rollout: RolloutSpec?

    static let fields = ["agents", "rollbackScript", "checks", "agentChecks", "grace", "activationTimeout", "rollout"]

    public init(
        agents: [String: StorePath], rollbackScript: [String: StorePath]? = nil, checks: [HealthCheck]? = nil,
        agentChecks: [String: [HealthCheck]]? = nil, grace: TimeSpan? = nil, activationTimeout: TimeSpan? = nil,
        rollout: RolloutSpec? = nil
    ) {
        self.rollout = rollout
        self.agents = agents
        self.rollbackScript = rollbackScript
        self.checks = checks
        self.agentChecks = agentChecks
        self.grace = grace
        self.activationTimeout = activationTimeout
    }

    /// What this deploy.json asks of `agent`'s activation; nil when it asks nothing (a plain
    /// deploy.json), so that the deployment runs exactly as one without these fields.
    public func activation(for agent: String) -> ActivationSettings? {
        let settings = ActivationSettings(
            checks: (checks ?? []) + (agentChecks?[agent] ?? []), grace: grace, timeout: activationTimeout)
        return settings.isEmpty ? nil : settings
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
        for key in root.keys.sorted() where !fields.contains(key) {
            throw DeploySpecError(
                "\(source): unknown field \"\(key)\"; the fields are "
                    + fields.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        guard let agentsValue = root["agents"] else {
            throw DeploySpecError("\(source): missing \"agents\": {\"<agent name>\": \"/nix/store/…\"}")
        }
        let agents = try storePathMap(agentsValue, field: "agents", source: source)
        guard !agents.isEmpty else { throw DeploySpecError("\(source): \"agents\" is empty; name at least one agent") }
        var rollback: [String: StorePath]?
        if let value = root["rollbackScript"], !(value is NSNull) {
            rollback = try storePathMap(value, field: "rollbackScript", source: source)
        }
        var spec = DeploySpec(agents: agents, rollbackScript: rollback)
        if let value = root["checks"], !(value is NSNull) {
            spec.checks = try checkList(value, field: "checks", source: source)
        }
        if let value = root["agentChecks"], !(value is NSNull) {
            guard let map = value as? [String: Any] else {
                throw DeploySpecError("\(source): \"agentChecks\" must be an object of agent names to lists of checks")
            }
            var agentChecks: [String: [HealthCheck]] = [:]
            for (name, list) in map {
                agentChecks[name] = try checkList(list, field: "agentChecks.\(name)", source: source)
            }
            spec.agentChecks = agentChecks
        }
        spec.grace = try timeSpan(root["grace"], field: "grace", source: source)
        spec.activationTimeout = try timeSpan(root["activationTimeout"], field: "activationTimeout", source: source)
        if let value = root["rollout"], !(value is NSNull) {
            spec.rollout = try RolloutSpec.parse(value, source: source)
        }
        try spec.validate(source: source)
        return spec
    }

    private static func checkList(_ value: Any, field: String, source: String) throws(DeploySpecError) -> [HealthCheck]
    {
        guard let list = value as? [Any] else {
            throw DeploySpecError("\(source): \"\(field)\" must be a list of checks")
        }
        var checks: [HealthCheck] = []
        for (index, item) in list.enumerated() {
            do {
                checks.append(try HealthCheck.parse(item, field: "\(field)[\(index)]"))
            } catch {
                throw DeploySpecError("\(source): \(error.description)")
            }
        }
        return checks
    }

    private static func timeSpan(_ value: Any?, field: String, source: String) throws(DeploySpecError) -> TimeSpan? {
        guard let value, !(value is NSNull) else { return nil }
        guard let text = value as? String, let span = TimeSpan(parsing: text) else {
            throw DeploySpecError("\(source): \"\(field)\" must be a duration such as \"30s\", \"5m\" or \"1h\"")
        }
        return span
    }

    public func validate(source: String = "deploy.json") throws(DeploySpecError) {
        for name in agents.keys.sorted() {
            do {
                try ResourceName.validate(name, what: "agent")
            } catch {
                throw DeploySpecError("\(source): agents: \(error.description)")
            }
        }
        for name in (agentChecks ?? [:]).keys.sorted() where agents[name] == nil {
            throw DeploySpecError("\(source): agentChecks.\(name): \"agents\" names no agent \"\(name)\"")
        }
        if let activationTimeout, activationTimeout.duration <= .zero {
            throw DeploySpecError("\(source): \"activationTimeout\" must be longer than 0s")
        }
        try rollout?.validate(agents: agents, source: source)
    }

    /// An object of names to store paths, each parsed here: the only place deploy.json's paths are text.
    private static func storePathMap(_ value: Any, field: String, source: String) throws(DeploySpecError) -> [String:
        StorePath]
    {
        guard let map = value as? [String: Any] else {
            throw DeploySpecError("\(source): \"\(field)\" must be an object of names to store paths")
        }
        var result: [String: StorePath] = [:]
        for (key, item) in map.sorted(by: { $0.key < $1.key }) {
            guard let text = item as? String else {
                throw DeploySpecError("\(source): \(field).\(key) must be a string (a store path)")
            }
            do {
                result[key] = try StorePath(parsing: text)
            } catch let error as StorePathError {
                throw DeploySpecError(
                    "\(source): \(field).\(key): \"\(text)\" is not a store path (/nix/store/<hash>-<name>): "
                        + error.reason)
            } catch {
                throw DeploySpecError("\(source): \(field).\(key): \(error)")
            }
        }
        return result
    }
}

public struct DeploySpecError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
