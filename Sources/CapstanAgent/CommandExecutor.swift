import CapstanModel
import CapstanProcess
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A command the runner started that did not exit 0.
public struct CommandFailure: Error, CustomStringConvertible, Sendable {
    public var command: [String]
    public var status: Int32
    /// The last lines it printed, so the reason says what went wrong without opening the log.
    public var lastLines: [String]
    /// Set when it was stopped for taking longer than this.
    public var timedOut: TimeSpan?

    public init(command: [String], status: Int32, lastLines: [String], timedOut: TimeSpan? = nil) {
        self.command = command
        self.status = status
        self.lastLines = lastLines
        self.timedOut = timedOut
    }

    public var commandLine: String { command.joined(separator: " ") }

    public var description: String {
        let tail = lastLines.suffix(3).joined(separator: " | ")
        let what = timedOut.map { "did not finish within \($0) and was stopped" } ?? "exited with status \(status)"
        return "`\(commandLine)` \(what)" + (tail.isEmpty ? "" : ": \(tail)")
    }
}

/// Runs commands for a deployment with every line they print going to the deployment's log.
struct CommandExecutor: Sendable {
    let log: DeploymentLog
    /// Added to the inherited environment (less the agent's credentials) of every command.
    let extraEnvironment: [String: String]

    /// Runs `command` (a program on PATH or an absolute path) in a process group of its own, stdin
    /// from /dev/null, and returns what it printed on stdout. Throws `CommandFailure` unless it exits 0
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
                throw CommandFailure(
                    command: command, status: error.status, lastLines: error.lastLines, timedOut: TimeSpan(limit))
            }
            log.append("\(error)")
            throw CommandFailure(command: command, status: error.status, lastLines: error.lastLines + ["\(error)"])
        }
        if result.leftOutputOpen {
            log.append("(\(program) left a process behind that still holds its output open)")
        }
        guard result.termination.isSuccess else {
            log.append("\(program) exited with status \(result.termination.status)")
            throw CommandFailure(command: command, status: result.termination.status, lastLines: result.lastLines)
        }
        return result.outputText
    }
}
