import CapstanModel
import Foundation
import NixCore

extension DeploymentDirectory {
    /// A successful deployment whose configuration needs a reboot: its outcome waits for the machine to boot it.
    var awaitingRebootMarker: String { path + "/awaiting-reboot" }
    /// The reboot this deployment waited for is over (confirmed, or failed and rolled back).
    var rebootSettledMarker: String { path + "/reboot-settled" }
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
    /// confirms the booted system or fails the deployment and rolls back.
    func superviseReboot(now: Date = Date()) {
        guard configuration.rebootPolicy == .whenNeeded else { return }
        if let record = RebootRecord.load(from: configuration.stateDirectory) {
            // Asked already: never again until the machine is back, so a restarted agent does not loop.
            if record.machineCameBack(bootedSystem: configuration.bootedSystemPath) { settle(record) }
            return
        }
        // Successes finished while the server was away wait just the same.
        for directory in DeploymentDirectory.all(in: configuration.stateDirectory)
        where !directory.hasMarker(directory.reportedMarker) {
            if let outcome = try? directory.result() { _ = holdsBack(outcome, of: directory) }
        }
        guard let directory = awaitingReboot(), let toplevel = currentStorePath else { return }
        if let window = configuration.maintenanceWindow, !window.contains(now) { return }
        let record = RebootRecord(
            deploymentID: directory.id, toplevel: toplevel,
            bootedBefore: RebootRecord.linkTarget(configuration.bootedSystemPath), bootID: RebootRecord.currentBootID,
            requestedAt: now)
        do {
            // Written first: the reboot may end this process before the command returns.
            try record.save(in: configuration.stateDirectory)
        } catch {
            logger.error("cannot record the reboot in the state directory, so not rebooting: \(error)")
            return
        }
        logger.notice("rebooting into \(toplevel) for deployment \(directory.id)")
        append("Rebooting: \(configuration.rebootCommand.joined(separator: " "))", to: directory)
        guard let log = try? DeploymentLog(path: directory.logFile) else { return }
        do {
            try CommandExecutor(log: log, extraEnvironment: [:]).run(
                configuration.rebootCommand, timeout: .seconds(300))
        } catch {
            RebootRecord.remove(from: configuration.stateDirectory)
            fail(directory, reason: "the reboot command failed (\(error)); the machine still runs its previous kernel")
        }
    }

    /// The server cancelled a deployment that waits for its reboot: the previous configuration is made
    /// the one to boot again, and the deployment ends Cancelled. Nothing when it does not wait for one.
    func cancelAwaitingReboot(_ directory: DeploymentDirectory) -> Bool {
        guard directory.hasMarker(directory.awaitingRebootMarker), !directory.hasMarker(directory.rebootSettledMarker)
        else { return false }
        if RebootRecord.load(from: configuration.stateDirectory)?.deploymentID == directory.id {
            RebootRecord.remove(from: configuration.stateDirectory)
        }
        logger.notice("deployment \(directory.id) cancelled while it waited for a reboot")
        fail(directory, reason: "the server cancelled it while it waited for a reboot", cancelled: true)
        return true
    }

    /// The machine is back: it booted the deployed configuration, or the deployment failed.
    private func settle(_ record: RebootRecord) {
        RebootRecord.remove(from: configuration.stateDirectory)
        guard
            let directory = try? DeploymentDirectory(
                stateDirectory: configuration.stateDirectory, id: record.deploymentID),
            directory.exists
        else { return }
        let booted = RebootRecord.linkTarget(configuration.bootedSystemPath)
        if booted == record.toplevel.path {
            append("The machine rebooted into the deployed configuration \(record.toplevel)", to: directory)
            try? directory.setMarker(directory.rebootSettledMarker)
            logger.notice("deployment \(directory.id): rebooted into \(record.toplevel)")
            return
        }
        fail(
            directory,
            reason:
                "after the reboot the machine runs \(booted ?? "an unknown system"), not the deployed configuration "
                + record.toplevel.path)
    }

    /// Fails a deployment that waited for a reboot, after rolling the profile back to the previous
    /// generation and making that the configuration to boot.
    private func fail(_ directory: DeploymentDirectory, reason: String, cancelled: Bool = false) {
        append(
            (cancelled ? "Cancelled the deployment: " : "Failed to activate the deployment: ") + reason
                + "; rolling back", to: directory)
        var rolledBack = false
        if let log = try? DeploymentLog(path: directory.logFile) {
            let executor = CommandExecutor(log: log, extraEnvironment: [:])
            do {
                try executor.run(
                    ["nix-env", "--profile", configuration.profilePath, "--rollback"], timeout: .seconds(120))
                if let previous = currentStorePath,
                    FileManager.default.isExecutableFile(atPath: previous.path + "/bin/switch-to-configuration")
                {
                    try executor.run([previous.path + "/bin/switch-to-configuration", "boot"], timeout: .seconds(600))
                }
                rolledBack = true
            } catch {
                log.append("Rollback failed: \(error)")
            }
        }
        let outcome = DeploymentOutcome(
            id: directory.id, succeeded: false,
            reason: reason + (rolledBack ? "; rolled back to the previous configuration for the next boot" : ""),
            rolledBack: rolledBack, currentStorePath: currentStorePath, cancelled: cancelled)
        do {
            try directory.writeResult(outcome)
            try directory.setMarker(directory.rebootSettledMarker)
        } catch {
            logger.error("cannot record the result of deployment \(directory.id): \(error)")
        }
        logger.error("deployment \(directory.id): \(reason)")
    }

    private func append(_ line: String, to directory: DeploymentDirectory) {
        (try? DeploymentLog(path: directory.logFile))?.append(line)
    }
}
