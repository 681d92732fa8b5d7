import Foundation

/// The parts of a `.drv` the runner needs, from `nix show-derivation`.
public struct EffectDerivation: Sendable, Equatable {
    public var path: String
    public var builder: String
    public var arguments: [String]
    public var environment: [String: String]
    public var inputDerivations: [String: [String]]
    public var inputSources: [String]

    public var isEffect: Bool { environment["isEffect"] == "1" }

    /// `secretsMap`, stored as a JSON string attribute: local name → secret name.
    public func secretsMap() throws(EffectError) -> [String: String] {
        guard let text = environment["secretsMap"], !text.isEmpty else { return [:] }
        guard let json = try? JSONValue.parse(Data(text.utf8)), let object = json.objectValue else {
            throw .invalidSecretsMap("expected a JSON object, found \(text)")
        }
        var map: [String: String] = [:]
        for (local, value) in object {
            guard let name = value.stringValue else {
                throw .invalidSecretsMap("\(local) must name a secret with a string, not \(value.typeName)")
            }
            map[local] = name
        }
        return map
    }

    static func parse(_ data: Data, path: String) throws(EffectError) -> EffectDerivation {
        struct Shown: Decodable {
            var builder: String
            var args: [String]
            var env: [String: String]
            var inputDrvs: [String: [String]]
            var inputSrcs: [String]
        }
        let shown: [String: Shown]
        do {
            shown = try JSONDecoder().decode([String: Shown].self, from: data)
        } catch {
            throw .unexpectedDerivation(path, reason: "nix show-derivation printed something unexpected: \(error)")
        }
        guard let entry = shown.first else {
            throw .unexpectedDerivation(path, reason: "nix show-derivation printed no derivation")
        }
        let drv = entry.value
        return EffectDerivation(
            path: entry.key, builder: drv.builder, arguments: drv.args, environment: drv.env,
            inputDerivations: drv.inputDrvs, inputSources: drv.inputSrcs)
    }
}
