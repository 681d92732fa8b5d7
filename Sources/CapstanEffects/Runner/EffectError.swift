import CapstanProcess

/// Why an effect could not be prepared or started (its own failure is its exit code).
public enum EffectError: Error, CustomStringConvertible {
    case command(CommandError)
    case notAnEffect(String)
    case unexpectedDerivation(String, reason: String)
    case invalidSecretsMap(String)
    case sandbox(String)
    case signing(cache: String, reason: String)

    public var description: String {
        switch self {
        case .command(let error):
            return error.description
        case .notAnEffect(let what):
            return "\(what) is not an effect (it lacks isEffect = true); make effects with mkEffect or runCachixDeploy"
        case .unexpectedDerivation(let path, let reason):
            return "\(path): \(reason)"
        case .invalidSecretsMap(let reason):
            return "the effect's secretsMap is not valid: \(reason)"
        case .sandbox(let reason):
            return "could not set up the effect's sandbox: \(reason)"
        case .signing(let cache, let reason):
            return "cannot sign the prebuilt paths for \(cache): \(reason)"
        }
    }
}
