import CapstanModel
import Foundation
import Logging
import NixCore

/// A local action while a deployment waits for its reboot: the operator's action wins. The waiting
/// deployment ends Cancelled (reported by the agent) before the action changes the machine, so no
/// reboot, confirmation or rollback of it can follow and undo what the operator did.
extension LocalAction {
    /// Ends every deployment that waits for its reboot, for the local action `id` which activates `target`;
    /// returns their ids. Called holding the agent's lock, so no runner of theirs is in the middle of a step.
    func supersedeAwaitingReboot(by id: String, target: StorePath, logger: Logger) -> [String] {
        var superseded: [String] = []
        for directory in DeploymentDirectory.all(in: stateDirectory)
        where directory.hasMarker(directory.awaitingRebootMarker) && !directory.hasMarker(directory.rebootSettledMarker)
        {
            let reason =
                "superseded by the local \(action.rawValue) \(id) on the machine, which activates \(target) "
                + "instead of the deployment's configuration; the deployment no longer waits for a reboot"
            do {
                try directory.endSuperseded(
                    reason: reason, currentStorePath: ProfileTarget.storePath(ofProfile: profilePath),
                    stateDirectory: stateDirectory)
            } catch {
                logger.error("cannot record that deployment \(directory.id) is superseded: \(error)")
                continue
            }
            logger.warning(
                "deployment \(directory.id) waited for a reboot; this \(action.rawValue) supersedes it and the agent reports it Cancelled"
            )
            superseded.append(directory.id)
        }
        return superseded
    }
}
