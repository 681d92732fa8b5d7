import Foundation

/// The environment a child is given, built from this process's own.
public enum ProcessEnvironment {
    /// This process's environment without the variables in `removing` (credentials a child has no
    /// business with), with `merging` added on top.
    public static func inherited(removing: Set<String> = [], merging extra: [String: String] = [:]) -> [String: String]
    {
        var environment = ProcessInfo.processInfo.environment.filter { !removing.contains($0.key) }
        environment.merge(extra) { $1 }
        return environment
    }
}
