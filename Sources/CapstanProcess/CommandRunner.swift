import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Runs child processes for the whole of Capstan: the client's and the effects' `nix` calls, the
/// agent's activation steps, `watch-exec`'s build.
///
/// posix_spawn rather than Foundation's Process or swift-subprocess: it lets the child start with a
/// clean signal mask (Swift's threads block signals, and an activation script's `wait` would never see
/// SIGCHLD), in a process group or session of its own, with the parent's other descriptors closed —
/// and one poll loop on the caller's thread reads the output, so nothing here needs a run loop or an executor.
public enum CommandRunner {
    /// Runs `invocation` to its end and returns how it ended; a non-zero exit is a result, not an error
    /// (see `CommandResult.checked()`).
    ///
    /// `onLine` gets every line of the `.capture` and `.lines` streams on the calling thread; while it
    /// runs nothing more is read, so a slow consumer holds the command back rather than filling memory.
    /// Throws `CommandError` when the command cannot start, times out or prints more than its limit,
    /// `CancellationError` when the current task is cancelled, and the error `stopWhen` returns once it
    /// returns one; in each of those cases the command's group is ended first (SIGTERM, SIGKILL after
    /// the grace).
    public static func run(
        _ invocation: CommandInvocation, onLine: (OutputLine) -> Void = { _ in },
        stopWhen: () -> (any Error)? = { nil }
    ) throws -> CommandResult {
        let session = try ChildSession(invocation)
        return try session.run(stopWhen: stopWhen, onLine: onLine)
    }

    /// Starts `invocation` and returns its pid without waiting; the caller reaps it. Output must go
    /// to `.discard`, `.inherit` or `.file`, and the input be `.none` or `.file`: nothing here reads or writes its pipes.
    public static func start(_ invocation: CommandInvocation) throws(CommandError) -> pid_t {
        precondition(
            [invocation.standardOutput, invocation.standardError].allSatisfy { $0 != .capture && $0 != .lines },
            "a started command's output must not be piped to the caller")
        if case .bytes = invocation.input { preconditionFailure("a started command cannot read bytes from the caller") }
        return try Spawn.start(invocation, pipes: SpawnPipes())
    }
}
