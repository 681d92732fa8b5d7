import ArgumentParser
import CapstanAgent
import CapstanModel
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The detached runner the agent starts for each deployment (not for people to call).
struct DeployRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Carry out one deployment the agent prepared in its state directory (started by the agent).",
        discussion: """
            Reads <state-dir>/deployments/<id>/order.json, waits for <state-dir>/lock, then realises, switches, \
            activates and verifies the configuration, rolling back on failure, timeout or cancel (the agent \
            writes <state-dir>/deployments/<id>/cancel). Writes log.ndjson as it goes and result.json at the \
            end. Exits 0 when the deployment succeeded, 1 when it failed or was cancelled.
            """,
        shouldDisplay: false
    )

    @Option(help: "The agent's state directory (the same as `capstan deploy agent --state-dir`).")
    var stateDir: String

    @Option(help: "The deployment to run: a directory name under <state-dir>/deployments.")
    var id: String

    @Option(help: "Log level of the runner's own messages: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        // Its own session, whoever started it: signals to the agent's process group must not reach it.
        _ = setsid()
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "capstan.deploy.run")
        let outcome: DeploymentOutcome
        do {
            outcome = try await DeploymentRunner.runDetached(stateDirectory: stateDir, id: id, logger: logger)
        } catch {
            throw ValidationError("\(error)")
        }
        if !outcome.succeeded {
            let ended = outcome.cancelled ? "was cancelled" : "failed"
            printError("deployment \(id) \(ended): \(outcome.reason ?? "no reason given")")
            throw ExitCode(1)
        }
    }
}
