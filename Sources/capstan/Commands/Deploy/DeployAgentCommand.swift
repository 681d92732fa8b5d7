import ArgumentParser
import CapstanAgent
import CapstanModel
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct DeployAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the deployment agent of this machine: wait for deployments and carry them out.",
        discussion: """
            The agent keeps a connection to the server, and for each deployment fetches the store path from \
            the agent's cache, activates it (NixOS: switch-to-configuration test, then boot once healthy), \
            checks that the server is still reachable, the rollback script and the health checks pass, and \
            rolls back otherwise, or when the activation outlives --activation-timeout or is cancelled. Each \
            deployment runs in a process of its own, so restarting the agent (as a NixOS switch may) does not \
            interrupt it.
            The token comes from CAPSTAN_AGENT_TOKEN (or CACHIX_AGENT_TOKEN).
            """
    )

    @Argument(help: "The agent's name, as created on the server.")
    var name: String

    @Argument(help: "The profile to switch, under --profiles-dir (default: system).")
    var profile: String = "system"

    @Option(help: "Server URL (default: $CAPSTAN_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Option(help: "Directory of Nix profiles.")
    var profilesDir: String = AgentConfiguration.defaultProfilesDirectory

    @Option(help: "Directory for the agent's deployments, lock and netrc; kept across restarts.")
    var stateDir: String = AgentConfiguration.defaultStateDirectory

    @Option(help: "Nix system of this machine, e.g. x86_64-linux (default: what nix-instantiate reports).")
    var system: String?

    @Option(help: "Seconds the server may take to answer again after an activation before it is rolled back.")
    var verifyTimeout: Int = 60

    @Option(
        help: ArgumentHelp(
            "How NixOS configurations are activated: two-phase (switch-to-configuration test, checks, then boot) or switch.",
            valueName: "mode"))
    var activation: ActivationMode = .twoPhase

    @Option(help: "Longest an activation may take, checks included, before it is stopped and rolled back, e.g. 10m.")
    var activationTimeout: DurationArgument = DurationArgument(.seconds(600))

    @Option(
        name: .customLong("check"),
        help: ArgumentHelp(
            #"A health check of this agent's own, run after every activation (repeatable): {"systemd": "no-failed-units"}, {"http": URL, "status": 200, "timeout": "10s"} or {"command": ["/path", "arg"], "timeout": "30s"}."#,
            valueName: "json"))
    var checks: [String] = []

    @Option(help: "How long failing health checks are retried, unless a deployment says otherwise, e.g. 30s.")
    var checkGrace: DurationArgument = DurationArgument(.seconds(30))

    @Option(help: "The running system, compared with the deployed configuration to tell whether a reboot is needed.")
    var bootedSystem: String = AgentConfiguration.defaultBootedSystemPath

    @Option(
        help: ArgumentHelp(
            "never: only report that a reboot is needed; when-needed: reboot (in the maintenance window) and confirm the deployed configuration booted.",
            valueName: "policy"))
    var rebootPolicy: RebootPolicy = .never

    @Option(
        help: ArgumentHelp(
            #"When the agent may reboot, in the machine's local time: "Sun 02:00-04:00", "Sat,Sun 23:00-01:00" or "02:00-04:00" (every day)."#,
            valueName: "window"))
    var maintenanceWindow: String?

    @Option(help: "The command that reboots the machine, split at spaces.")
    var rebootCommand: String = AgentConfiguration.defaultRebootCommand.joined(separator: " ")

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard verifyTimeout > 0 else { throw ValidationError("--verify-timeout must be a positive number of seconds") }
        guard !name.isEmpty else { throw ValidationError("the agent name must not be empty") }
        _ = try parsedChecks()
        _ = try parsedWindow()
        guard !rebootCommand.split(separator: " ").isEmpty else {
            throw ValidationError("--reboot-command must name a command, e.g. \"systemctl reboot\"")
        }
    }

    func parsedWindow() throws -> MaintenanceWindow? {
        do {
            return try maintenanceWindow.map { text throws(MaintenanceWindowError) in
                try MaintenanceWindow(parsing: text)
            }
        } catch {
            throw ValidationError("--maintenance-window: \(error)")
        }
    }

    /// The `--check` options as checks; errors name the option and what to fix.
    func parsedChecks() throws -> [HealthCheck] {
        try checks.enumerated().map { index, text in
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
                throw ValidationError(
                    "--check \(text): not JSON; give an object such as {\"systemd\": \"no-failed-units\"}")
            }
            do {
                return try HealthCheck.parse(object, field: "--check #\(index + 1)")
            } catch let error as DeploySpecError {
                throw ValidationError(error.description)
            }
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let token = environment["CAPSTAN_AGENT_TOKEN"] ?? environment["CACHIX_AGENT_TOKEN"], !token.isEmpty
        else {
            throw ValidationError(
                "no agent token: set CAPSTAN_AGENT_TOKEN to the token shown when agent '\(name)' was created")
        }
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let configuration: AgentConfiguration
        do {
            configuration = AgentConfiguration(
                name: name, serverURL: url ?? environment["CAPSTAN_URL"] ?? "http://127.0.0.1:8080", token: token,
                profile: profile, profilesDirectory: profilesDir, stateDirectory: stateDir,
                system: try system ?? AgentConfiguration.detectSystem(), verifyTimeout: .seconds(verifyTimeout),
                version: CapstanVersion.current, runnerExecutable: try AgentConfiguration.currentExecutable(),
                activationMode: activation, activationTimeout: activationTimeout.duration, checks: try parsedChecks(),
                checkGrace: checkGrace.duration, bootedSystemPath: bootedSystem, rebootPolicy: rebootPolicy,
                maintenanceWindow: try parsedWindow(),
                rebootCommand: rebootCommand.split(separator: " ").map(String.init))
            _ = try configuration.connectURL()
        } catch let error as AgentConfigurationError {
            throw ValidationError(error.description)
        }

        let shutdown = ShutdownSignal()
        let signalSources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { shutdown.trigger() }
            source.resume()
            return source
        }
        defer { signalSources.forEach { $0.cancel() } }
        try await AgentConnection(configuration: configuration, logger: Logger(label: "capstan.agent"))
            .run(until: shutdown)
    }
}

extension ActivationMode: ExpressibleByArgument {}
extension RebootPolicy: ExpressibleByArgument {}
