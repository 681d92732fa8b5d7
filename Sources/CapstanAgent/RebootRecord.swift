import Foundation
import NixCore

/// `<state>/reboot.json`: the reboot the agent asked for and what the machine ran before it, so that
/// the agent asks only once (an agent restarted in the same window does not reboot again) and, once the
/// machine is back, can tell whether it booted the deployed configuration.
struct RebootRecord: Codable, Sendable, Equatable {
    /// The deployment that waits for the reboot.
    var deploymentID: String
    /// The configuration the machine should boot.
    var toplevel: StorePath
    /// Where the booted-system link pointed when the reboot was asked for.
    var bootedBefore: String?
    /// The kernel's boot id then; a new one means the machine did reboot.
    var bootID: String?
    var requestedAt: Date

    static func path(in stateDirectory: String) -> String { stateDirectory + "/reboot.json" }

    static func load(from stateDirectory: String) -> RebootRecord? {
        try? StateFiles.readJSON(RebootRecord.self, from: path(in: stateDirectory))
    }

    func save(in stateDirectory: String) throws {
        try StateFiles.writeJSON(self, to: Self.path(in: stateDirectory))
    }

    static func remove(from stateDirectory: String) {
        try? FileManager.default.removeItem(atPath: path(in: stateDirectory))
    }

    /// The running kernel's boot id, different after every boot.
    static var currentBootID: String? {
        (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Where a booted-system link points (not followed further: the target need not exist here).
    static func linkTarget(_ path: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: path)
    }

    /// The machine came back: it booted since the reboot was asked for, or the booted system changed.
    func machineCameBack(bootedSystem: String) -> Bool {
        (Self.currentBootID != nil && Self.currentBootID != bootID) || Self.linkTarget(bootedSystem) != bootedBefore
    }
}
