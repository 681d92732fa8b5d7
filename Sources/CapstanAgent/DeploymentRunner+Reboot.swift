import CapstanModel
import Foundation

/// The steps of a deployment that waits for its reboot, run in a runner (under the machine's lock) so
/// that the agent's supervisor is never held up by them.
extension DeploymentRunner {
    /// Reboots or rolls back as `step` says; returns the deployment's outcome as it stands afterwards.
    func carryOut(_ step: RebootStep) throws -> DeploymentOutcome {
        if directory.hasMarker(directory.rebootSettledMarker) {
            // Settled meanwhile (cancelled, or superseded by a local action): nothing is left to do.
            if RebootRecord.load(from: stateDirectory)?.deploymentID == directory.id {
                RebootRecord.remove(from: stateDirectory)
            }
            logger.info("deployment \(directory.id) no longer waits for its reboot; nothing to do")
            return try directory.result() ?? Self.missingResult(directory.id)
        }
        switch step.kind {
        case .reboot:
            // A local action that got the lock first, before the deployment was seen waiting, changed the
            // profile: it wins here too, and the machine is not rebooted for a configuration it no longer has.
            if let record = RebootRecord.load(from: stateDirectory), record.deploymentID == directory.id,
                let now = profileTarget(), now != record.toplevel
            {
                try directory.endSuperseded(
                    reason:
                        "superseded by a local action on the machine, which activated \(now) instead of the "
                        + "deployment's configuration; not rebooting", currentStorePath: now,
                    stateDirectory: stateDirectory)
                say("Not rebooting: the profile points at \(now) now, not at \(record.toplevel)")
                return try directory.result() ?? Self.missingResult(directory.id)
            }
            let command = step.command ?? []
            do {
                try executor.run(command, timeout: .seconds(300))
                return try directory.result() ?? Self.missingResult(directory.id)
            } catch {
                let rollBack = RebootStep.rollBack(
                    reason: "the reboot command failed (\(error)); the machine still runs its previous kernel",
                    cancelled: false, previous: step.previous)
                // Recorded first: a runner interrupted from here on resumes the rollback, never the reboot.
                try directory.writeRebootStep(rollBack)
                RebootRecord.remove(from: stateDirectory)
                return try endAwaitingReboot(rollBack)
            }
        case .rollBack:
            return try endAwaitingReboot(step)
        }
    }

    /// Fails (or cancels) the deployment after pointing the profile at the previous generation again
    /// and making that the configuration to boot.
    private func endAwaitingReboot(_ step: RebootStep) throws -> DeploymentOutcome {
        var rolledBack = false
        if let previous = step.previous {
            say("Rolling back to \(previous) as the configuration to boot")
            do {
                if profileTarget() != previous {
                    try executor.run(
                        ["nix-env", "--profile", task.profilePath, "--set", previous.path], timeout: .seconds(120))
                }
                let switchCommand = previous.path + "/bin/switch-to-configuration"
                if FileManager.default.isExecutableFile(atPath: switchCommand) {
                    try executor.run([switchCommand, "boot"], timeout: task.activationTimeout)
                }
                rolledBack = true
            } catch {
                log.append("Rollback failed: \(error)")
            }
        } else {
            log.append("Rollback failed: the profile \(task.profilePath) has no generation before this deployment")
        }
        let reason = step.reason ?? "the deployment ended while it waited for a reboot"
        let outcome = DeploymentOutcome(
            id: directory.id, succeeded: false,
            reason: reason + (rolledBack ? "; rolled back to the previous configuration for the next boot" : ""),
            rolledBack: rolledBack, currentStorePath: profileTarget(), cancelled: step.cancelled)
        // The result first: a settled deployment whose result still says success would be reported so.
        try directory.writeResult(outcome)
        try directory.setMarker(directory.rebootSettledMarker)
        logger.error("deployment \(directory.id): \(reason)")
        return outcome
    }

    private static func missingResult(_ id: String) -> DeploymentOutcome {
        DeploymentOutcome(
            id: id, succeeded: false, reason: "the deployment has no result", rolledBack: false,
            currentStorePath: nil)
    }
}
