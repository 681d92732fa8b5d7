import CapstanProcess
import Foundation

/// The environment of everything the agent starts (the runner, nix, switch and rollback scripts,
/// checks): the agent's own, less its credentials. A configuration being activated has no business
/// with the token that lets this machine speak for itself to the server.
enum ChildEnvironment {
    static let credentials: Set<String> = ["CAPSTAN_AGENT_TOKEN", "CACHIX_AGENT_TOKEN", "CAPSTAN_TOKEN"]

    static func current(merging extra: [String: String] = [:]) -> [String: String] {
        ProcessEnvironment.inherited(removing: credentials, merging: extra)
    }
}
