import Foundation
import NixCore

/// deploy.json's `rollout`: the agents in waves, each started only after the one before succeeded
/// and a pause passed; agents no wave names form a last wave.
public struct RolloutSpec: Codable, Sendable, Equatable {
    public var waves: [[String]]
    /// How many deployments may fail before the rollout stops.
    public var maxFailures: Int
    /// Waited between the end of one wave and the start of the next.
    public var pause: TimeSpan?

    static let fields = ["waves", "maxFailures", "pause"]

    public init(waves: [[String]], maxFailures: Int = 0, pause: TimeSpan? = nil) {
        self.waves = waves
        self.maxFailures = maxFailures
        self.pause = pause
    }

    /// The waves of a deploy to `agents`: the named ones in order, then those no wave names; waves left
    /// empty (every agent filtered out) are dropped.
    public func plan(agents: [String]) -> [[String]] {
        let wanted = Set(agents)
        var planned = waves.map { $0.filter(wanted.contains) }
        let named = Set(waves.joined())
        let rest = agents.filter { !named.contains($0) }.sorted()
        planned.append(rest)
        return planned.filter { !$0.isEmpty }
    }

    /// Checks the rollout against the deploy.json's agents; errors name the field and the agent.
    public func validate(agents: [String: StorePath], source: String) throws(DeploySpecError) {
        guard !waves.isEmpty else {
            throw DeploySpecError(
                "\(source): rollout.waves is empty; list the agents of the first wave, e.g. [[\"web1\"]]")
        }
        var seen: [String: Int] = [:]
        for (waveIndex, wave) in waves.enumerated() {
            guard !wave.isEmpty else {
                throw DeploySpecError(
                    "\(source): rollout.waves[\(waveIndex)] is empty; name at least one agent or remove it")
            }
            for (position, name) in wave.enumerated() {
                let field = "rollout.waves[\(waveIndex)][\(position)]"
                guard agents[name] != nil else {
                    throw DeploySpecError(
                        "\(source): \(field): \"\(name)\" is not an agent of this deploy.json; add it to \"agents\" or remove it"
                    )
                }
                if let earlier = seen[name] {
                    throw DeploySpecError(
                        "\(source): \(field): \"\(name)\" is already in rollout.waves[\(earlier)]; an agent belongs to one wave"
                    )
                }
                seen[name] = waveIndex
            }
        }
        guard maxFailures >= 0 else {
            throw DeploySpecError("\(source): rollout.maxFailures is \(maxFailures); it must be 0 or more")
        }
    }

    /// Parses the `rollout` object of a deploy.json.
    static func parse(_ value: Any, source: String) throws(DeploySpecError) -> RolloutSpec {
        guard let object = value as? [String: Any] else {
            throw DeploySpecError(
                "\(source): \"rollout\" must be an object such as {\"waves\": [[\"web1\"], [\"web2\"]], \"pause\": \"30s\"}"
            )
        }
        for key in object.keys.sorted() where !fields.contains(key) {
            throw DeploySpecError(
                "\(source): rollout: unknown field \"\(key)\"; the fields are "
                    + fields.map { "\"\($0)\"" }.joined(separator: ", "))
        }
        guard let list = object["waves"] as? [Any] else {
            throw DeploySpecError(
                "\(source): rollout.waves must be a list of lists of agent names, e.g. [[\"web1\"], [\"web2\"]]")
        }
        var waves: [[String]] = []
        for (index, item) in list.enumerated() {
            guard let names = item as? [Any] else {
                throw DeploySpecError("\(source): rollout.waves[\(index)] must be a list of agent names")
            }
            var wave: [String] = []
            for (position, name) in names.enumerated() {
                guard let text = name as? String else {
                    throw DeploySpecError(
                        "\(source): rollout.waves[\(index)][\(position)] must be an agent name (a string)")
                }
                wave.append(text)
            }
            waves.append(wave)
        }
        var spec = RolloutSpec(waves: waves)
        if let value = object["maxFailures"], !(value is NSNull) {
            // JSON numbers read back as their digits; true, 1.5 and "1" do not.
            guard !(value is String), let number = Int(String(describing: value)) else {
                throw DeploySpecError("\(source): rollout.maxFailures must be a whole number, 0 or more")
            }
            spec.maxFailures = number
        }
        if let value = object["pause"], !(value is NSNull) {
            guard let text = value as? String, let span = TimeSpan(parsing: text) else {
                throw DeploySpecError(
                    "\(source): rollout.pause: \(String(describing: value).debugDescription) is not a duration such as \"30s\", \"5m\" or \"1h\""
                )
            }
            spec.pause = span
        }
        return spec
    }
}
