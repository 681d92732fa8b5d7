/// Why an effect could not be prepared or started (its own failure is its exit code).
public enum EffectError: Error, CustomStringConvertible {
    case command([String], status: Int32, stderr: String)
    case notAnEffect(String)
    case unexpectedDerivation(String, reason: String)
    case invalidSecretsMap(String)
    case sandbox(String)

    public var description: String {
        switch self {
        case .command(let arguments, let status, let stderr):
            let message = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "`\(arguments.joined(separator: " "))` failed (exit \(status))"
                + (message.isEmpty ? "" : ":\n" + message)
        case .notAnEffect(let what):
            return "\(what) is not an effect (it lacks isEffect = true); make effects with mkEffect or runCachixDeploy"
        case .unexpectedDerivation(let path, let reason):
            return "\(path): \(reason)"
        case .invalidSecretsMap(let reason):
            return "the effect's secretsMap is not valid: \(reason)"
        case .sandbox(let reason):
            return "could not set up the effect's sandbox: \(reason)"
        }
    }
}
