/// Whether the agent reboots its machine when a deployed configuration needs it.
public enum RebootPolicy: String, Sendable, CaseIterable {
    /// Only report that a reboot is needed; a person reboots.
    case never
    /// Reboot (within the maintenance window, if there is one), then confirm the deployed configuration booted.
    case whenNeeded = "when-needed"
}
