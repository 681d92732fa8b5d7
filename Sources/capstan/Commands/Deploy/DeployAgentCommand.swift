import ArgumentParser
import CapstanAgent
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
            the agent's cache, switches the profile, activates it, checks that the server is still reachable \
            (and the rollback script, if any, succeeds) and rolls back otherwise. Each deployment runs in a \
            process of its own, so restarting the agent (as a NixOS switch may) does not interrupt it.
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

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard verifyTimeout > 0 else { throw ValidationError("--verify-timeout must be a positive number of seconds") }
        guard !name.isEmpty else { throw ValidationError("the agent name must not be empty") }
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
                version: CapstanVersion.current, runnerExecutable: try AgentConfiguration.currentExecutable())
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
