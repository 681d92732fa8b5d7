import CapstanModel
import CapstanProcess
import NixCore

/// Why a deployment failed; the description is the reason the server and the CI log show.
public enum DeploymentFailure: Error, CustomStringConvertible, Sendable {
    case realiseFailed(CommandError)
    case wrongSystem(storePath: StorePath, builtFor: String, agentSystem: String)
    /// The failed units could not be listed before the switch, which the systemd check needs.
    case checkSetupFailed(any Error & Sendable)
    case profileSwitchFailed(profile: String, CommandError)
    case activationFailed(CommandError)
    case serverUnreachable(url: String, seconds: Double, lastError: String)
    case rollbackScriptFailed(CommandError)
    /// The last round of checks when the grace period ended.
    case checksFailed([CheckResult], grace: TimeSpan)
    /// `switch-to-configuration boot` failed after the configuration had proved healthy.
    case commitFailed(CommandError)
    /// Anything else that stopped the activation.
    case unexpected(String)
    /// The activation ran out of time in `step` and was stopped.
    case timedOut(TimeSpan, step: String)

    public var description: String {
        switch self {
        case .realiseFailed(let failure):
            "cannot fetch the configuration from the cache: \(failure.stepText); check that it was pushed to the agent's cache"
        case .wrongSystem(let storePath, let builtFor, let agentSystem):
            "\(storePath) is built for \(builtFor), this agent runs \(agentSystem); build the configuration for \(agentSystem)"
        case .checkSetupFailed(let error):
            "cannot list the failed systemd units before the switch, which the systemd check compares with: \(error)"
        case .profileSwitchFailed(let profile, let failure):
            "cannot switch the profile \(profile): \(failure.stepText)"
        case .activationFailed(let failure):
            "activation failed: \(failure.stepText)"
        case .unexpected(let detail):
            "activation failed: \(detail)"
        case .serverUnreachable(let url, let seconds, let lastError):
            "the new configuration cannot reach the server: \(url)/health did not answer within \(Int(seconds)) s (\(lastError))"
        case .rollbackScriptFailed(let failure):
            "the rollback script rejected the new configuration: \(failure.stepText)"
        case .checksFailed(let results, let grace):
            "health check failed within the grace period of \(grace): "
                + results.filter { !$0.passed }.map { result in
                    "\(result.check) (\(result.attempts) attempt\(result.attempts == 1 ? "" : "s")"
                        + (result.output.last.map { ": \($0)" } ?? "") + ")"
                }.joined(separator: "; ")
        case .commitFailed(let failure):
            "the configuration was healthy but writing its boot entry failed: \(failure.stepText)"
        case .timedOut(let timeout, let step):
            "the activation did not finish within its timeout of \(timeout) (it was at: \(step)); it was stopped"
        }
    }
}

extension CommandError {
    /// A failed step as deployment reasons word it: an exit is "exited with status N".
    var stepText: String {
        guard case .failed(.exited(let status)) = reason else { return description }
        let tail = lastLines.suffix(3).joined(separator: " | ")
        return "`\(commandLine)` exited with status \(status)" + (tail.isEmpty ? "" : ": \(tail)")
    }
}
