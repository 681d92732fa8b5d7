import CapstanClient
import CapstanModel
import Foundation

/// Everything an agent needs to know about itself, its server and the machine it manages.
public struct AgentConfiguration: Sendable {
    /// The agent's name as the server knows it.
    public var name: String
    /// The Capstan server, e.g. `https://capstan.example.org`.
    public var serverURL: String
    /// The agent token (shown once when the agent was created).
    public var token: String
    /// The profile the agent switches, under `profilesDirectory` (`system` for NixOS).
    public var profile: String
    public var profilesDirectory: String
    /// Where deployment directories, the lock and the netrc live; survives agent restarts.
    public var stateDirectory: String
    /// Nix system of this machine, e.g. `x86_64-linux`.
    public var system: String
    /// How long the server may take to answer `/health` after an activation.
    public var verifyTimeout: Duration
    /// The agent's own version, reported in its hello.
    public var version: String
    /// The executable started as `<runner> deploy run …` for each deployment; the agent's own.
    public var runnerExecutable: String
    /// Interval of WebSocket pings; a server that misses two is considered gone.
    public var pingInterval: Duration
    /// How NixOS configurations are activated.
    public var activationMode: ActivationMode
    /// The longest an activation may take, from the switch to the commit, checks included; a
    /// deployment may ask for less.
    public var activationTimeout: Duration
    /// The agent's own health checks, run after every activation besides the deployment's.
    public var checks: [HealthCheck]
    /// How long failing checks are retried, unless the deployment says otherwise.
    public var checkGrace: Duration
    /// The running system's toplevel, compared with the deployed one to tell whether a reboot is needed.
    public var bootedSystemPath: String
    /// Whether the agent reboots the machine itself when its deployed configuration needs it.
    public var rebootPolicy: RebootPolicy
    /// When the agent may reboot (local time of the machine); nil: whenever a reboot is needed.
    public var maintenanceWindow: MaintenanceWindow?
    /// What the agent runs to reboot.
    public var rebootCommand: [String]

    public static let defaultProfilesDirectory = "/nix/var/nix/profiles"
    public static let defaultStateDirectory = "/var/lib/capstan-agent"
    public static let defaultVerifyTimeout: Duration = .seconds(60)
    public static let defaultActivationTimeout: Duration = .seconds(600)
    public static let defaultCheckGrace: Duration = .seconds(30)
    public static let defaultBootedSystemPath = "/run/booted-system"
    public static let defaultRebootCommand = ["systemctl", "reboot"]

    public init(
        name: String, serverURL: String, token: String, profile: String = "system",
        profilesDirectory: String = AgentConfiguration.defaultProfilesDirectory,
        stateDirectory: String = AgentConfiguration.defaultStateDirectory, system: String,
        verifyTimeout: Duration = AgentConfiguration.defaultVerifyTimeout, version: String,
        runnerExecutable: String, pingInterval: Duration = .seconds(20), activationMode: ActivationMode = .twoPhase,
        activationTimeout: Duration = AgentConfiguration.defaultActivationTimeout, checks: [HealthCheck] = [],
        checkGrace: Duration = AgentConfiguration.defaultCheckGrace,
        bootedSystemPath: String = AgentConfiguration.defaultBootedSystemPath, rebootPolicy: RebootPolicy = .never,
        maintenanceWindow: MaintenanceWindow? = nil, rebootCommand: [String] = AgentConfiguration.defaultRebootCommand
    ) {
        self.name = name
        self.serverURL = serverURL.hasSuffix("/") ? String(serverURL.dropLast()) : serverURL
        self.token = token
        self.profile = profile
        self.profilesDirectory = profilesDirectory
        self.stateDirectory = stateDirectory
        self.system = system
        self.verifyTimeout = verifyTimeout
        self.version = version
        self.runnerExecutable = runnerExecutable
        self.pingInterval = pingInterval
        self.activationMode = activationMode
        self.activationTimeout = activationTimeout
        self.checks = checks
        self.checkGrace = checkGrace
        self.bootedSystemPath = bootedSystemPath
        self.rebootPolicy = rebootPolicy
        self.maintenanceWindow = maintenanceWindow
        self.rebootCommand = rebootCommand
    }

    /// `<profilesDirectory>/<profile>`, the symlink `nix-env -p` switches.
    public var profilePath: String { (profilesDirectory as NSString).appendingPathComponent(profile) }

    /// The agent's WebSocket endpoint: the server URL with http→ws, https→wss.
    public func connectURL() throws -> String {
        guard var components = URLComponents(string: serverURL), let scheme = components.scheme?.lowercased(),
            components.host != nil
        else { throw AgentConfigurationError.invalidServerURL(serverURL) }
        switch scheme {
        case "http", "ws": components.scheme = "ws"
        case "https", "wss": components.scheme = "wss"
        default: throw AgentConfigurationError.invalidServerURL(serverURL)
        }
        components.path = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
        components.path += AgentProtocol.path
        guard let url = components.string else { throw AgentConfigurationError.invalidServerURL(serverURL) }
        return url
    }

    /// The Nix system of this machine, as `nix-instantiate` reports `builtins.currentSystem`.
    public static func detectSystem() throws -> String {
        let command = ["nix-instantiate", "--eval", "--json", "--expr", "builtins.currentSystem"]
        let output: Data
        do {
            output = try LocalNix.run(command)
        } catch {
            throw AgentConfigurationError.systemUndetectable(String(describing: error))
        }
        let text = String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let system = text.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard !system.isEmpty, !system.contains(" ") else {
            throw AgentConfigurationError.systemUndetectable("unexpected output \(text.debugDescription)")
        }
        return system
    }

    /// The executable of this process (`/proc/self/exe`), which the agent re-runs as the runner.
    public static func currentExecutable() throws -> String {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return resolved
        }
        let argument0 = ProcessInfo.processInfo.arguments.first ?? ""
        guard argument0.hasPrefix("/") else { throw AgentConfigurationError.executableUnknown }
        return argument0
    }
}

public enum AgentConfigurationError: Error, CustomStringConvertible, Equatable {
    case invalidServerURL(String)
    case systemUndetectable(String)
    case executableUnknown

    public var description: String {
        switch self {
        case .invalidServerURL(let url):
            "server URL \(url.debugDescription) is not an http:// or https:// URL; pass --url https://your-capstan-server"
        case .systemUndetectable(let detail):
            "cannot detect this machine's Nix system with nix-instantiate (\(detail)); pass --system, e.g. --system x86_64-linux"
        case .executableUnknown:
            "cannot find the capstan executable to start deployments with (/proc/self/exe is unreadable)"
        }
    }
}
