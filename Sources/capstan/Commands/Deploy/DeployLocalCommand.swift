import ArgumentParser
import CapstanAgent
import CapstanModel
import Foundation
import Logging
import NixCore

/// Break glass on the machine itself, without the server.
struct DeployLocalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "local",
        abstract: "Roll back or activate a configuration on this machine without the server (break glass).",
        discussion: """
            Runs the agent's own steps (realise, switch, activate, health of the switch, roll back on failure) \
            under the agent's lock, so never beside a deployment; refuses at once while one runs. A deployment \
            that waits for its reboot is superseded: it ends Cancelled before the machine is changed. What was \
            done is kept in the agent's state directory; the agent reports it when it is connected, and the \
            server records it in the audit log as done on this machine.
            """,
        subcommands: [Rollback.self, Activate.self]
    )

    /// The agent's settings the local steps share with it.
    struct AgentOptions: ParsableArguments {
        @Option(help: "The profile to switch, under --profiles-dir.") var profile = "system"
        @Option(help: "Directory of Nix profiles (the agent's --profiles-dir).")
        var profilesDir: String = AgentConfiguration.defaultProfilesDirectory
        @Option(help: "The agent's state directory (its --state-dir): its lock and where the action is recorded.")
        var stateDir: String = AgentConfiguration.defaultStateDirectory
        @Option(help: "Nix system of this machine (default: what nix-instantiate reports).") var system: String?
        @Option(
            help: ArgumentHelp(
                "How a NixOS configuration is activated: two-phase (test, then boot) or switch.", valueName: "mode"))
        var activation: ActivationMode = .twoPhase
        @Option(help: "Longest the activation may take before it is stopped and rolled back, e.g. 10m.")
        var activationTimeout: DurationArgument = DurationArgument(.seconds(600))

        func run(_ action: LocalActionReport.Action, storePath: StorePath?) async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return handler
            }
            let local = LocalAction(
                action: action, storePath: storePath, stateDirectory: stateDir,
                profilePath: (profilesDir as NSString).appendingPathComponent(profile),
                system: try system ?? AgentConfiguration.detectSystem(), activationMode: activation,
                activationTimeout: activationTimeout.duration)
            let report: LocalActionReport
            do {
                report = try await local.run(logger: Logger(label: "capstan.deploy.local"))
            } catch let error as LocalActionError {
                printError("error: \(error)")
                throw ExitCode(2)
            }
            if report.succeeded {
                printError("\(action.rawValue): \(report.storePath) is active; the agent reports it to the server")
            } else {
                printError("\(action.rawValue) failed: \(report.reason ?? "no reason given")")
                throw ExitCode(1)
            }
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate the profile's previous generation on this machine.")
        @OptionGroup var options: AgentOptions

        func run() async throws { try await options.run(.rollback, storePath: nil) }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Activate a configuration already in (or substitutable to) this machine's store.")
        @OptionGroup var options: AgentOptions
        @Argument(help: "The configuration's store path.", transform: { try StorePath(parsing: $0) })
        var storePath: StorePath

        func run() async throws { try await options.run(.activate, storePath: storePath) }
    }
}
