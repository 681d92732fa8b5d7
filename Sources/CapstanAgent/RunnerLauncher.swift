import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A runner the agent could not start.
public struct RunnerLaunchError: Error, CustomStringConvertible, Sendable {
    public var executable: String
    public var code: Int32
    public var description: String {
        "cannot start the deployment runner \(executable): \(String(cString: strerror(code)))"
    }
}

/// Starts `capstan deploy run` for a deployment as a process in its own session, so that
/// stopping or restarting the agent (which an activation may do) does not stop the deployment.
public enum RunnerLauncher {
    /// glibc's `POSIX_SPAWN_SETSID`, which the Swift Glibc module does not export (it is a GNU extension).
    private static let spawnSetSID: Int32 = 0x80

    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), looked up at run time for the same reason.
    nonisolated(unsafe) private static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// Spawns the runner with stdin from /dev/null and its output appended to `runner.out`,
    /// and returns its pid; the caller reaps it (or, after an agent restart, init does).
    public static func spawn(executable: String, stateDirectory: String, directory: DeploymentDirectory) throws
        -> pid_t
    {
        let arguments = [executable, "deploy", "run", "--state-dir", stateDirectory, "--id", directory.id]
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // A new session: no signal sent to the agent's process group or terminal reaches the runner.
        posix_spawnattr_setflags(&attributes, Int16(spawnSetSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, directory.runnerOutputFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // The agent's sockets and files stay with the agent (they are close-on-exec too, where NIO opened them).
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }

        let cArguments = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, cArguments, environ)
        guard status == 0 else { throw RunnerLaunchError(executable: executable, code: status) }
        return pid
    }
}
