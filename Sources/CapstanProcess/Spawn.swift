import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The parent's ends are the caller's; these are the child's ends of the pipes, dup'ed onto 0, 1 and 2.
struct SpawnPipes {
    var input: Int32?
    var output: Int32?
    var error: Int32?
}

/// posix_spawn with a clean signal state, the group the invocation asks for, and no descriptor of the
/// parent's beyond 0, 1 and 2.
enum Spawn {
    /// glibc's `POSIX_SPAWN_SETSID`, which the Swift Glibc module does not export (a GNU extension).
    static let setSessionFlag: Int32 = 0x80

    typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias AddChdir =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) ->
        Int32

    /// `posix_spawn_file_actions_addclosefrom_np` (glibc 2.34+), looked up at run time for the same reason.
    static let addCloseFrom: AddCloseFrom? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: AddCloseFrom.self)
    }()

    /// `posix_spawn_file_actions_addchdir_np` (glibc 2.29+).
    static let addChdir: AddChdir? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    static func start(_ invocation: CommandInvocation, pipes: SpawnPipes) throws(CommandError) -> pid_t {
        func failure(_ detail: String) -> CommandError {
            CommandError(arguments: invocation.arguments, reason: .couldNotStart(detail))
        }
        guard let program = invocation.arguments.first else { throw failure("no program given") }
        guard let executable = resolve(program, path: invocation.environment["PATH"]) else {
            throw failure("\(program) is not an executable on PATH")
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        switch invocation.grouping {
        case .ownSession: flags |= setSessionFlag
        case .ownProcessGroup:
            flags |= Int32(POSIX_SPAWN_SETPGROUP)
            posix_spawnattr_setpgroup(&attributes, 0)
        case .parentGroup: break
        }
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
        switch invocation.input {
        case .none: posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .file(let path): posix_spawn_file_actions_addopen(&actions, 0, path, O_RDONLY, 0)
        case .bytes: if let fd = pipes.input { posix_spawn_file_actions_adddup2(&actions, fd, 0) }
        }
        for (target, output, pipe) in [
            (Int32(1), invocation.standardOutput, pipes.output), (Int32(2), invocation.standardError, pipes.error),
        ] {
            switch output {
            case .discard: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .inherit: break
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            case .capture, .lines: if let fd = pipe { posix_spawn_file_actions_adddup2(&actions, fd, target) }
            }
        }
        if let directory = invocation.workingDirectory {
            guard let addChdir else { throw failure("this C library cannot set a child's working directory") }
            guard FileManager.default.fileExists(atPath: directory) else {
                throw failure("its working directory \(directory) does not exist")
            }
            _ = addChdir(&actions, directory)
        }
        // The parent's sockets, pipes and locks stay with the parent.
        if let addCloseFrom { _ = addCloseFrom(&actions, 3) }

        let cArguments = invocation.arguments.map { strdup($0) } + [nil]
        defer { cArguments.forEach { free($0) } }
        let cEnvironment = invocation.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cEnvironment.forEach { free($0) } }
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, cArguments, cEnvironment)
        guard status == 0 else { throw failure("\(executable): \(String(cString: strerror(status)))") }
        return pid
    }

    /// `program` itself when it names a path, else the first executable of that name on `path`
    /// (the child's PATH, so that a command runs what its own environment says).
    static func resolve(_ program: String, path: String?) -> String? {
        if program.contains("/") { return program }
        let directories = (path ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        for directory in directories where !directory.isEmpty {
            let candidate = "\(directory)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}
