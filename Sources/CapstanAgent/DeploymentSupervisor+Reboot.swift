import CapstanModel
import Foundation
import NixCore

extension DeploymentDirectory {
    /// A successful deployment whose configuration needs a reboot: its outcome waits for the machine to boot it.
    var awaitingRebootMarker: String { path + "/awaiting-reboot" }
    /// The reboot this deployment waited for is over (confirmed, or failed and rolled back).
    var rebootSettledMarker: String { path + "/reboot-settled" }

    /// Ends a deployment that waits for its reboot as Cancelled and leaves the machine as it is: a local
    /// action replaced its configuration. No reboot for it follows.
    func endSuperseded(reason: String, currentStorePath: StorePath?, stateDirectory: String) throws {
        (try? DeploymentLog(path: logFile))?.append("Cancelled the deployment: \(reason)")
        let outcome = DeploymentOutcome(
            id: id, succeeded: false, reason: reason, rolledBack: false, currentStorePath: currentStorePath,
            cancelled: true)
        // The result first: a settled deployment whose result still says success would be reported so.
        try writeResult(outcome)
        try setMarker(rebootSettledMarker)
        if RebootRecord.load(from: stateDirectory)?.deploymentID == id { RebootRecord.remove(from: stateDirectory) }
    }
}

/// `--reboot-policy when-needed`: a success whose kernel, initrd or modules differ from the booted
/// ones stays InProgress until the machine has rebooted (once, in the maintenance window) and booted it.
extension DeploymentSupervisor {
    /// The deployment that waits for the machine to reboot, if any.
    func awaitingReboot() -> DeploymentDirectory? {
        DeploymentDirectory.all(in: configuration.stateDirectory).last {
            $0.hasMarker($0.awaitingRebootMarker) && !$0.hasMarker($0.rebootSettledMarker)
        }
    }

    /// Whether `outcome` must not be reported yet because its configuration waits for a reboot;
    /// the first time, marks the deployment and says so in its log.
    func holdsBack(_ outcome: DeploymentOutcome, of directory: DeploymentDirectory) -> Bool {
        guard configuration.rebootPolicy == .whenNeeded, outcome.succeeded,
            !directory.hasMarker(directory.rebootSettledMarker)
        else { return false }
        if directory.hasMarker(directory.awaitingRebootMarker) { return true }
        guard let toplevel = outcome.currentStorePath, toplevel == currentStorePath,
            RebootRequirement.needsReboot(bootedSystem: configuration.bootedSystemPath, toplevel: toplevel.path) == true
        else { return false }
        do {
            try directory.setMarker(directory.awaitingRebootMarker)
        } catch {
            logger.error("cannot record that deployment \(directory.id) waits for a reboot: \(error)")
            return false
        }
        let when = configuration.maintenanceWindow.map { "in the maintenance window \($0)" } ?? "now"
        append(
            "The new configuration's kernel, initrd or kernel modules differ from the running ones: rebooting \(when); "
                + "the deployment finishes once the machine has booted it",
            to: directory)
        logger.notice("deployment \(directory.id) waits for a reboot \(when)")
        return true
    }

    /// Reboots once for the deployment that waits for it, within the window; once the machine is back,
    /// confirms the booted system or fails the deployment and rolls back. The reboot command and the
    /// rollback run in a runner: the supervisor only asks for them and never waits.
    func superviseReboot(now: Date = Date()) {
        guard configuration.rebootPolicy == .whenNeeded else { return }
        if let record = RebootRecord.load(from: configuration.stateDirectory) {
            if let directory = waitingForReboot(record.deploymentID) {
                // Asked already: never again until the machine is back, so a restarted agent does not loop.
                guard record.machineCameBack(bootedSystem: configuration.bootedSystemPath) else {
                    if let step = directory.rebootStep(), step.kind == .reboot, step.attempts == 0 {
                        resume(step, of: directory)
                    }
                    return
                }
                settle(record, of: directory)
            } else {
                // Its deployment ended otherwise (cancelled, superseded by a local action).
                RebootRecord.remove(from: configuration.stateDirectory)
            }
        }
        // Successes finished while the server was away wait just the same.
        for directory in DeploymentDirectory.all(in: configuration.stateDirectory)
        where !directory.hasMarker(directory.reportedMarker) {
            if let outcome = try? directory.result() { _ = holdsBack(outcome, of: directory) }
        }
        guard let directory = awaitingReboot() else { return }
        if let step = directory.rebootStep(), step.kind == .rollBack {
            resume(step, of: directory)
            return
        }
        guard let toplevel = currentStorePath else { return }
        if let window = configuration.maintenanceWindow, !window.contains(now) { return }
        let record = RebootRecord(
            deploymentID: directory.id, toplevel: toplevel,
            bootedBefore: RebootRecord.linkTarget(configuration.bootedSystemPath), bootID: RebootRecord.currentBootID,
            requestedAt: now)
        let step = RebootStep.reboot(configuration.rebootCommand, previous: previousGeneration())
        do {
            // Written first: the reboot may end this process before the command returns.
            try record.save(in: configuration.stateDirectory)
            try directory.writeRebootStep(step)
        } catch {
            RebootRecord.remove(from: configuration.stateDirectory)
            logger.error("cannot record the reboot in the state directory, so not rebooting: \(error)")
            return
        }
        logger.notice("rebooting into \(toplevel) for deployment \(directory.id)")
        append("Rebooting: \(configuration.rebootCommand.joined(separator: " "))", to: directory)
        resume(step, of: directory)
    }

    /// The server cancelled a deployment that waits for its reboot: the previous configuration is made
    /// the one to boot again, and the deployment ends Cancelled. Nothing when it does not wait for one.
    func cancelAwaitingReboot(_ directory: DeploymentDirectory) -> Bool {
        guard directory.hasMarker(directory.awaitingRebootMarker), !directory.hasMarker(directory.rebootSettledMarker)
        else { return false }
        // Already ending: a repeated cancel changes nothing.
        if directory.rebootStep()?.kind == .rollBack { return true }
        if RebootRecord.load(from: configuration.stateDirectory)?.deploymentID == directory.id {
            RebootRecord.remove(from: configuration.stateDirectory)
        }
        logger.notice("deployment \(directory.id) cancelled while it waited for a reboot")
        rollBack(directory, reason: "the server cancelled it while it waited for a reboot", cancelled: true)
        return true
    }

    /// The deployment `id` if it still waits for its reboot.
    private func waitingForReboot(_ id: String) -> DeploymentDirectory? {
        guard let directory = try? DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: id),
            directory.exists, !directory.hasMarker(directory.rebootSettledMarker)
        else { return nil }
        return directory
    }

    /// The machine is back: it booted the deployed configuration, or the deployment failed.
    private func settle(_ record: RebootRecord, of directory: DeploymentDirectory) {
        RebootRecord.remove(from: configuration.stateDirectory)
        let booted = RebootRecord.linkTarget(configuration.bootedSystemPath)
        if booted == record.toplevel.path {
            append("The machine rebooted into the deployed configuration \(record.toplevel)", to: directory)
            try? directory.setMarker(directory.rebootSettledMarker)
            logger.notice("deployment \(directory.id): rebooted into \(record.toplevel)")
            return
        }
        rollBack(
            directory,
            reason:
                "after the reboot the machine runs \(booted ?? "an unknown system"), not the deployed configuration "
                + record.toplevel.path)
    }

    /// Asks a runner to fail (or cancel) a deployment that waited for a reboot, after rolling the profile
    /// back to the previous generation and making that the configuration to boot.
    private func rollBack(_ directory: DeploymentDirectory, reason: String, cancelled: Bool = false) {
        append(
            (cancelled ? "Cancelled the deployment: " : "Failed to activate the deployment: ") + reason
                + "; rolling back", to: directory)
        let step = RebootStep.rollBack(reason: reason, cancelled: cancelled, previous: previousGeneration())
        do {
            try directory.writeRebootStep(step)
        } catch {
            logger.error("cannot record the rollback of deployment \(directory.id): \(error)")
            return
        }
        resume(step, of: directory)
    }

    /// Starts a runner for `step` unless one runs already; one that died without settling the deployment
    /// is started again a few times (its rollback can be repeated), then the deployment fails as it stands.
    private func resume(_ step: RebootStep, of directory: DeploymentDirectory) {
        // One runner at a time; the next tick asks again.
        guard !hasRunner(directory), runningChild == nil else { return }
        guard step.attempts < RebootStep.maxAttempts else {
            giveUp(step, of: directory)
            return
        }
        var step = step
        step.attempts += 1
        do {
            try directory.writeRebootStep(step)
            let pid = try launchRunner(for: directory)
            logger.info("deployment \(directory.id): started runner (pid \(pid)) for its \(step.kind.rawValue) step")
        } catch {
            logger.error(
                "deployment \(directory.id): cannot start a runner for its \(step.kind.rawValue) step: \(error)")
        }
    }

    private func giveUp(_ step: RebootStep, of directory: DeploymentDirectory) {
        let reason =
            (step.reason ?? "the deployment ended while it waited for a reboot")
            + "; the rollback did not finish (its runner ended \(step.attempts) times without a result)"
        append("Failed to roll back: \(reason)", to: directory)
        let outcome = DeploymentOutcome(
            id: directory.id, succeeded: false, reason: reason, rolledBack: false, currentStorePath: currentStorePath,
            cancelled: step.cancelled)
        do {
            try directory.writeResult(outcome)
            try directory.setMarker(directory.rebootSettledMarker)
        } catch {
            logger.error("cannot record the result of deployment \(directory.id): \(error)")
        }
        logger.error("deployment \(directory.id): \(reason)")
    }

    /// The store path of the profile's generation before the current one, nil when there is none.
    private func previousGeneration() -> StorePath? {
        try? LocalAction.previousGeneration(of: configuration.profilePath)
    }

    private func append(_ line: String, to directory: DeploymentDirectory) {
        (try? DeploymentLog(path: directory.logFile))?.append(line)
    }
}
