import Foundation

/// A command that could not start, failed, or was stopped; says which command and why.
public struct CommandError: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        case couldNotStart(String)
        case failed(Termination)
        case timedOut(Duration)
        case outputTooLarge(limit: Int)
        /// It succeeded but printed something the caller cannot read.
        case unexpectedOutput(String)
    }

    public var arguments: [String]
    public var reason: Reason
    /// The last lines it printed.
    public var lastLines: [String]
    /// All of captured stderr (bounded by the invocation's output limit).
    public var standardError: String

    public init(arguments: [String], reason: Reason, lastLines: [String] = [], standardError: String = "") {
        self.arguments = arguments
        self.reason = reason
        self.lastLines = lastLines
        self.standardError = standardError
    }

    public var commandLine: String { arguments.joined(separator: " ") }

    /// The status a shell would report: 127 when it could not start, 128 + signal when a signal ended it.
    public var status: Int32 {
        switch reason {
        case .couldNotStart: 127
        case .failed(let termination): termination.status
        case .timedOut, .outputTooLarge: 128 + SIGKILL
        case .unexpectedOutput: 0
        }
    }

    public var description: String {
        let what: String
        switch reason {
        case .couldNotStart(let detail): what = "could not be started: \(detail)"
        case .failed(.exited(let status)): what = "failed (exit \(status))"
        case .failed(.signalled(let signal)): what = "was killed by signal \(signal)"
        case .timedOut(let limit): what = "did not finish within \(limit) and was stopped"
        case .outputTooLarge(let limit): what = "printed more than \(limit) bytes and was stopped"
        case .unexpectedOutput(let detail): what = "printed something unexpected (\(detail))"
        }
        let detail = standardError.trimmingCharacters(in: .whitespacesAndNewlines)
        let tail = detail.isEmpty ? lastLines.suffix(3).joined(separator: " | ") : String(detail.suffix(2000))
        return "`\(commandLine)` \(what)" + (tail.isEmpty ? "" : ": \(tail)")
    }
}
