/// How the agent activates a NixOS configuration.
public enum ActivationMode: String, Codable, Sendable, CaseIterable {
    /// `switch-to-configuration test`, then the checks, then `switch-to-configuration boot`: the
    /// bootloader entry is written only once the configuration proved healthy, so a machine that
    /// crashes or hangs before that boots into the previous generation.
    case twoPhase = "two-phase"
    /// `switch-to-configuration switch` at once (bootloader included), then the checks.
    case `switch`
}
