import Foundation

/// One program to run: its arguments, its exact environment, where it runs, what it reads and where
/// its output goes, and how long it may take.
public struct CommandInvocation: Sendable {
    /// What the child reads on descriptor 0.
    public enum Input: Sendable {
        case none
        case bytes([UInt8])
        case file(String)
    }

    /// Where one of the child's output descriptors goes.
    public enum Output: Sendable, Equatable {
        case discard
        /// The parent's own descriptor: a person sees it as it comes.
        case inherit
        /// Appended to a file.
        case file(String)
        /// Read by the runner: split into lines for the caller and kept, up to `outputLimit` bytes.
        case capture
        /// Read by the runner and split into lines for the caller; only the last lines are kept.
        case lines
    }

    /// Which processes a stop reaches.
    public enum Grouping: Sendable {
        /// A process group of its own: a stop ends the command and everything it started.
        case ownProcessGroup
        /// A session of its own: also outlives the parent's terminal and session (a detached runner).
        case ownSession
        /// The parent's group, so that a person's Ctrl-C reaches it; a stop reaches only the command itself.
        case parentGroup
    }

    /// The program (a path, or a name looked up on the environment's PATH) and its arguments.
    public var arguments: [String]
    /// The child's whole environment: nothing is inherited that is not in here.
    public var environment: [String: String]
    public var workingDirectory: String?
    public var input: Input = .none
    public var standardOutput: Output = .capture
    public var standardError: Output = .capture
    /// Stopped (the group ended) and reported as timed out after this long.
    public var timeout: Duration?
    /// Between SIGTERM and SIGKILL when the command is stopped.
    public var grace: Duration = .seconds(3)
    /// The most bytes kept of a captured stream; a command printing more is stopped.
    public var outputLimit: Int = 64 << 20
    public var grouping: Grouping = .ownProcessGroup
    /// How long output is still read after the command exited, from a daemon it started that holds its pipes.
    public var linger: Duration = .seconds(5)

    public init(_ arguments: [String], environment: [String: String] = ProcessEnvironment.inherited()) {
        self.arguments = arguments
        self.environment = environment
    }

    public var commandLine: String { arguments.joined(separator: " ") }
}
