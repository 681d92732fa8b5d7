import Logging

extension SecretsFile {
    /// The secrets an effect may see: those its `secretsMap` names (local name → secret name), under
    /// their local names, each only when its condition holds. Locally ("friendly"), a secret without
    /// a condition is granted with a warning; otherwise it is refused like a missing one.
    public func selection(
        for secretsMap: [String: String], context: SecretContext, friendly: Bool, logger: Logger
    ) throws(SecretAccessError) -> [String: Secret] {
        var selected: [String: Secret] = [:]
        for (local, name) in secretsMap.sorted(by: { $0.key < $1.key }) {
            guard let secret = secrets[name] else { throw SecretAccessError(name: name) }
            if let condition = secret.condition {
                guard condition.holds(in: context) else { throw SecretAccessError(name: name) }
            } else if friendly {
                logger.warning(
                    "Secret \(name) has no condition; granting it because this runs locally. Add a condition (capstan secret add --condition) before an agent uses it."
                )
            } else {
                throw SecretAccessError(name: name)
            }
            selected[local] = Secret(data: secret.data)
        }
        return selected
    }
}

/// Deliberately the same for a missing secret and a refused one, so that it tells nothing about which.
public struct SecretAccessError: Error, CustomStringConvertible, Equatable {
    public var name: String
    public var description: String { "Secret \(name) does not exist or access was denied" }
}
