import CapstanModel
import CapstanProcess
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs commands for a deployment with every line they print going to the deployment's log.
struct CommandExecutor: Sendable {
    let log: DeploymentLog
    /// Added to the inherited environment (less the agent's credentials) of every command.
    let extraEnvironment: [String: String]

    /// Runs `command` (a program on PATH or an absolute path) in a process group of its own, stdin
    /// from /dev/null, and returns what it printed on stdout. Throws `CommandError` unless it exits 0
    /// within `timeout`, and `Interruption` when `watch` stops it first; a stopped command's whole
    /// process group is ended.
    @discardableResult
    func run(_ command: [String], logStdout: Bool = true, timeout: Duration? = nil, watch: InterruptionWatch? = nil)
        throws -> String
    {
        guard let program = command.first else { return "" }
        log.append("$ \(command.joined(separator: " "))")
        var invocation = CommandInvocation(command, environment: ChildEnvironment.current(merging: extraEnvironment))
        invocation.timeout = timeout
        // Build logs on stderr can be long: they go to the log line by line, never into a bounded capture.
        invocation.standardError = .lines
        let log = self.log
        let result: CommandResult
        do {
            result = try CommandRunner.run(
                invocation,
                onLine: { line in
                    if line.stream == .standardError || logStdout { log.append(line.text) }
                }, stopWhen: { watch?.interruption() })
        } catch let interruption as Interruption {
            log.append(
                "Stopped \(program): " + (interruption == .cancelled ? "the deployment was cancelled" : "timed out"))
            throw interruption
        } catch let error as CommandError {
            if case .timedOut(let limit) = error.reason {
                log.append("Stopped \(program): it did not finish within \(TimeSpan(limit))")
            } else {
                log.append("\(error)")
            }
            throw error
        }
        if result.leftOutputOpen {
            log.append("(\(program) left a process behind that still holds its output open)")
        }
        guard result.termination.isSuccess else {
            log.append("\(program) exited with status \(result.termination.status)")
            throw CommandError(arguments: command, reason: .failed(result.termination), lastLines: result.lastLines)
        }
        return result.outputText
    }
}
