import Foundation
import NixCore

/// `<deployment>/reboot-step.json`: the long command the agent hands to a runner for a deployment that
/// waits for its reboot, so that the agent keeps serving its connection while the command runs.
struct RebootStep: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable {
        /// Run the reboot command; when it fails, roll back.
        case reboot
        /// End the deployment (failed or cancelled) and make `previous` the configuration to boot.
        case rollBack
    }

    var kind: Kind
    /// The reboot command, for `.reboot`.
    var command: [String]?
    /// Why the deployment ends, for `.rollBack`.
    var reason: String?
    /// The server cancelled it (it ends Cancelled rather than Failed).
    var cancelled = false
    /// The profile's generation before the deployment, found when the step was asked for so that a
    /// rollback interrupted and started again goes back to the same configuration.
    var previous: StorePath?
    /// Runners started for this step; bounds how often one that dies without a result is started again.
    var attempts = 0

    static let maxAttempts = 3

    static func reboot(_ command: [String], previous: StorePath?) -> RebootStep {
        RebootStep(kind: .reboot, command: command, previous: previous)
    }

    static func rollBack(reason: String, cancelled: Bool, previous: StorePath?) -> RebootStep {
        RebootStep(kind: .rollBack, reason: reason, cancelled: cancelled, previous: previous)
    }
}

extension DeploymentDirectory {
    var rebootStepFile: String { path + "/reboot-step.json" }

    func rebootStep() -> RebootStep? { try? StateFiles.readJSON(RebootStep.self, from: rebootStepFile) }

    func writeRebootStep(_ step: RebootStep) throws { try StateFiles.writeJSON(step, to: rebootStepFile) }
}
