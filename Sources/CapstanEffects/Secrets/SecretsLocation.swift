import Foundation

/// Where the secrets file and the binary caches file are, when no option names them.
public enum SecretsLocation {
    /// `--secrets`, else `$HERCULES_CI_SECRETS_JSON`, else `$XDG_CONFIG_HOME/capstan/secrets.json`
    /// (`~/.config` when XDG_CONFIG_HOME is unset).
    public static func secretsFile(explicit: String?, environment: [String: String]) -> String {
        if let explicit { return explicit }
        if let fromEnvironment = environment["HERCULES_CI_SECRETS_JSON"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return configDirectory(environment: environment) + "/secrets.json"
    }

    /// `--binary-caches`, else `binary-caches.json` beside the secrets file.
    public static func binaryCachesFile(explicit: String?, secretsFile: String) -> String {
        explicit
            ?? ((secretsFile as NSString).deletingLastPathComponent as NSString)
            .appendingPathComponent("binary-caches.json")
    }

    static func configDirectory(environment: [String: String]) -> String {
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/capstan" }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.config/capstan"
    }
}
