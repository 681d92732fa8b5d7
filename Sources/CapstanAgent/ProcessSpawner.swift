import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// posix_spawn with a clean signal state: threads of a Swift process block most signals, and a
/// child inheriting that mask (an activation script's `wait` never seeing SIGCHLD) would hang.
enum ProcessSpawner {
    /// glibc's `POSIX_SPAWN_SETSID`, which the Swift Glibc module does not export (a GNU extension).
    static let setSessionFlag: Int32 = 0x80

    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), looked up at run time for the same reason.
    nonisolated(unsafe) static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// What the child's descriptors 0, 1 and 2 become.
    enum Descriptor {
        case devNull
        case file(String)
        case existing(Int32)
    }

    /// Starts `arguments` (a path, or a name looked up on PATH) and returns its pid.
    static func spawn(
        _ arguments: [String], environment: [String: String], stdout: Descriptor, stderr: Descriptor,
        newSession: Bool
    ) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if newSession { flags |= setSessionFlag }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaultSignals = sigset_t()
        sigemptyset(&defaultSignals)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT] { sigaddset(&defaultSignals, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (target, descriptor) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch descriptor {
            case .devNull: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .existing(let fd): posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }
        // The parent's sockets, pipes and lock stay with the parent.
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }

        let cArguments = arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnvironment.forEach { free($0) } }
        var pid = pid_t()
        let program = arguments.first ?? ""
        let status =
            program.contains("/")
            ? posix_spawn(&pid, program, &actions, &attributes, cArguments, cEnvironment)
            : posix_spawnp(&pid, program, &actions, &attributes, cArguments, cEnvironment)
        guard status == 0 else { throw SpawnError(program: program, code: status) }
        return pid
    }

    /// Waits for `pid` and returns its exit status (128 + signal when a signal ended it).
    static func wait(for pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if errno != EINTR { return -1 }
        }
        return exitStatus(status)
    }

    /// Waits for `pid`, the leader of its own process group, asking `shouldStop` every 50 ms; once
    /// that gives a reason, ends the whole group (SIGTERM, SIGKILL after `grace`) and returns the reason.
    static func wait<Reason>(
        for pid: pid_t, grace: Duration = .seconds(3), stoppingWhen shouldStop: () -> Reason?
    ) -> (status: Int32, stopped: Reason?) {
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { return (exitStatus(status), nil) }
            if reaped < 0 && errno != EINTR { return (-1, nil) }
            if let reason = shouldStop() { return (stopGroup(of: pid, grace: grace), reason) }
            usleep(50_000)
        }
    }

    /// SIGTERM to the group, SIGKILL to whatever of it is left after `grace`; returns the leader's status.
    private static func stopGroup(of pid: pid_t, grace: Duration) -> Int32 {
        kill(-pid, SIGTERM)
        let end = ContinuousClock.now + grace
        var status: Int32 = 0
        var exit: Int32?
        while ContinuousClock.now < end {
            if waitpid(pid, &status, WNOHANG) == pid {
                exit = exitStatus(status)
                break
            }
            usleep(50_000)
        }
        // Children that outlived the leader (a `sleep` under a shell) go too.
        kill(-pid, SIGKILL)
        return exit ?? wait(for: pid)
    }

    private static func exitStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }
}

/// A program that could not be started at all.
public struct SpawnError: Error, CustomStringConvertible, Sendable {
    public var program: String
    public var code: Int32
    public var description: String { "cannot start \(program): \(String(cString: strerror(code)))" }
}
