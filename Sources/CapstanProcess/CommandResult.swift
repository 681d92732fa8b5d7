import Foundation

/// How a command ended.
public enum Termination: Sendable, Equatable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    init(waitStatus: Int32) {
        let signal = waitStatus & 0x7f
        self = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signalled(signal)
    }

    /// The shell's convention: the exit status, or 128 + the signal.
    public var status: Int32 {
        switch self {
        case .exited(let status): status
        case .signalled(let signal): 128 + signal
        }
    }

    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let status): "exit status \(status)"
        case .signalled(let signal): "signal \(signal)"
        }
    }
}

/// What a command that ran to its end left: how it ended and what it printed.
public struct CommandResult: Sendable {
    public var invocation: CommandInvocation
    public var termination: Termination
    /// Captured stdout (empty unless it was `.capture`).
    public var standardOutput: [UInt8]
    /// Captured stderr (empty unless it was `.capture`).
    public var standardError: [UInt8]
    /// The last lines read from either stream, for a reason that needs no log.
    public var lastLines: [String]
    /// Something the command started still held its output open when the runner stopped reading.
    public var leftOutputOpen: Bool

    public var outputText: String { String(decoding: standardOutput, as: UTF8.self) }
    public var errorText: String { String(decoding: standardError, as: UTF8.self) }

    /// Itself when the command exited 0, else a `CommandError` naming the command, its status and stderr.
    @discardableResult
    public func checked() throws(CommandError) -> CommandResult {
        guard termination.isSuccess else {
            throw CommandError(
                arguments: invocation.arguments, reason: .failed(termination), lastLines: lastLines,
                standardError: errorText)
        }
        return self
    }
}
