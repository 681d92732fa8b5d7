import Foundation

/// A child process that receives the signals sent to it: it starts with an empty signal mask and
/// default signal actions, in a process group of its own. (Foundation's `Process` hands on the test
/// runner's blocked signals, so a SIGTERM to such a child never arrives.) Its whole group is
/// killed when the value goes away, so a test leaves no process behind.
public final class SignalableProcess: @unchecked Sendable {
    public let pid: pid_t
    private var status: Int32?

    /// Runs `arguments[0]` (an absolute path) with `environment`; stdout and stderr append to `logPath`.
    public init(_ arguments: [String], environment: [String: String], logPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var noSignals = sigset_t()
        var allSignals = sigset_t()
        sigemptyset(&noSignals)
        sigfillset(&allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child = pid_t()
        let result = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw TestFailure("cannot start \(arguments[0]): \(String(cString: strerror(result)))")
        }
        pid = child
    }

    public var isRunning: Bool { reap(options: WNOHANG) == nil }

    public func signal(_ signal: Int32) { kill(pid, signal) }

    /// Waits up to `timeout` seconds for the process to end; returns its wait status, nil if it still runs.
    public func waitForExit(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let status = reap(options: WNOHANG) { return status }
            usleep(20_000)
        }
        return reap(options: WNOHANG)
    }

    private func reap(options: Int32) -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, options) == pid else { return nil }
        status = raw
        return raw
    }

    deinit {
        // The group: anything the process started goes with it.
        kill(-pid, SIGKILL)
        _ = reap(options: 0)
    }
}

/// Readable pieces of a `waitpid` status.
public enum WaitStatus {
    public static func exitCode(_ status: Int32) -> Int32? { status & 0x7f == 0 ? (status >> 8) & 0xff : nil }
    public static func signal(_ status: Int32) -> Int32? { status & 0x7f != 0 ? status & 0x7f : nil }
}
