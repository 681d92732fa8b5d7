/// Why a deployment failed; the description is the reason the server and the CI log show.
public enum DeploymentFailure: Error, CustomStringConvertible, Sendable {
    case invalidStorePath(String, detail: String)
    case realiseFailed(CommandFailure)
    case wrongSystem(storePath: String, builtFor: String, agentSystem: String)
    case profileSwitchFailed(profile: String, CommandFailure)
    case activationFailed(CommandFailure)
    case serverUnreachable(url: String, seconds: Double, lastError: String)
    case rollbackScriptFailed(CommandFailure)

    public var description: String {
        switch self {
        case .invalidStorePath(let path, let detail):
            "the deployment's store path \(path.debugDescription) is not a store path (\(detail))"
        case .realiseFailed(let failure):
            "cannot fetch the configuration from the cache: \(failure); check that it was pushed to the agent's cache"
        case .wrongSystem(let storePath, let builtFor, let agentSystem):
            "\(storePath) is built for \(builtFor), this agent runs \(agentSystem); build the configuration for \(agentSystem)"
        case .profileSwitchFailed(let profile, let failure):
            "cannot switch the profile \(profile): \(failure)"
        case .activationFailed(let failure):
            "activation failed: \(failure)"
        case .serverUnreachable(let url, let seconds, let lastError):
            "the new configuration cannot reach the server: \(url)/health did not answer within \(Int(seconds)) s (\(lastError))"
        case .rollbackScriptFailed(let failure):
            "the rollback script rejected the new configuration: \(failure)"
        }
    }
}
