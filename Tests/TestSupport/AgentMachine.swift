import Foundation

/// A deployment agent on a "machine" of its own: its own mount namespace with an empty `/nix`
/// (so it really substitutes from the cache), its own profiles and state directories.
public final class AgentMachine: @unchecked Sendable {
    public let name: String
    /// The machine's `/nix`, seen from the host.
    public let nixRoot: String
    public let stateDirectory: String
    public let logPath: String
    public let serverURL: String
    /// The machine's simulated systemd units and HTTP service.
    public let toy: ToySystem
    public let token: String
    private let extraArguments: [String]
    public private(set) var process: Process?

    public init(
        name: String, token: String, serverURL: String, in directory: TemporaryDirectory, arguments: [String] = []
    ) throws {
        self.name = name
        self.token = token
        self.serverURL = serverURL
        self.extraArguments = arguments
        nixRoot = directory.sub("machine-\(name)/nix")
        stateDirectory = directory.sub("machine-\(name)/state")
        logPath = directory.sub("machine-\(name)/agent.log")
        for path in [nixRoot, stateDirectory] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        FileManager.default.createFile(atPath: logPath, contents: nil)
        toy = try ToySystem(directory: directory.sub("machine-\(name)/toy"))
    }

    /// The profile inside the machine, e.g. `/nix/var/nix/profiles/system`.
    public var profilePath: String { "/nix/var/nix/profiles/system" }

    /// The store path the machine's profile points at, nil before its first deployment.
    public var currentProfileTarget: String? {
        let hostProfile = nixRoot + "/var/nix/profiles/system"
        guard let generation = try? FileManager.default.destinationOfSymbolicLink(atPath: hostProfile) else {
            return nil
        }
        let generationPath =
            generation.hasPrefix("/") ? nixRoot + generation.dropFirst(4) : nixRoot + "/var/nix/profiles/" + generation
        return try? FileManager.default.destinationOfSymbolicLink(atPath: generationPath)
    }

    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        let agent =
            ([
                TestEnvironment.capstanBinary, "deploy", "agent", name, "--url", serverURL,
                "--profiles-dir", "/nix/var/nix/profiles", "--state-dir", stateDirectory,
            ] + extraArguments)
            .map { "'\($0)'" }.joined(separator: " ")
        process.arguments = [
            "-m", "--propagation", "private", "sh", "-c", "mount --bind '\(nixRoot)' /nix && exec \(agent)",
        ]
        var env = TestEnvironment.nixEnvironment.merging(toy.environment) { $1 }
        env["CAPSTAN_AGENT_TOKEN"] = token
        // A machine of its own has its own home and Nix cache (Nix's narinfo cache is one SQLite file).
        env["HOME"] = (stateDirectory as NSString).deletingLastPathComponent + "/home"
        env["XDG_CACHE_HOME"] = (stateDirectory as NSString).deletingLastPathComponent + "/cache"
        env.removeValue(forKey: "CAPSTAN_TOKEN")
        process.environment = env
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// Runs `capstan ARGUMENTS` on the machine (its own `/nix`), as a person logged in there would.
    public func runCapstan(_ arguments: [String]) throws -> ProcessResult {
        let command = ([TestEnvironment.capstanBinary] + arguments).map { "'\($0)'" }.joined(separator: " ")
        var env = TestEnvironment.nixEnvironment.merging(toy.environment) { $1 }
        env["HOME"] = (stateDirectory as NSString).deletingLastPathComponent + "/home"
        env["XDG_CACHE_HOME"] = (stateDirectory as NSString).deletingLastPathComponent + "/cache"
        env.removeValue(forKey: "CAPSTAN_TOKEN")
        return try ProcessRunner.run(
            [
                "/usr/bin/unshare", "-m", "--propagation", "private", "sh", "-c",
                "mount --bind '\(nixRoot)' /nix && exec \(command)",
            ], environment: env)
    }

    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    public func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit {
        kill()
        // Runners are detached on purpose; end them with the test.
        _ = try? ProcessRunner.run(["pkill", "-KILL", "-f", "state-dir \(stateDirectory)"])
    }
}

/// Toy machine configurations: a NixOS-like toplevel whose switch records that it ran.
public enum ToyConfiguration {
    public struct Options: Sendable {
        public var switchExitCode: Int = 0
        /// Shell run at the start of the switch (e.g. to kill the agent, as a service restart would).
        public var switchPrelude: String = ""
        /// Shell run inside the switch (its `$1`, `$$`, `exit` and `exec` are the switch's) after it
        /// recorded its action and before it activates: to hang, fail one phase, or look around.
        public var switchScript: String = ""
        /// What the `system` file says; nil leaves the file out.
        public var system: String? = nil
        public var payloadBytes: Int = 20_000
        /// The machine's failed units once this configuration is active; nil leaves them as they are.
        public var failedUnits: [String]? = nil
        /// The port the configuration's HTTP service listens on; nil: it has none (and stops the previous one's).
        public var httpPort: Int? = nil
        /// A kernel version: the toplevel gets `kernel`, `initrd` and `kernel-modules` links into a kernel
        /// derivation shared by every configuration of that version (as NixOS toplevels have); nil: none.
        public var kernel: String? = nil
        public init() {}
    }

    /// Builds a configuration. Its switch appends "switched <out>" to `marker` when it activates
    /// (`switch`, `test`), "<action> <out>" for every action to `marker.actions`, and
    /// "<name> <action> <deployment id>" to `marker.deployments`; it prints "switch of <name> says hello".
    public static func build(
        name: String, marker: String, options: Options = Options(), in directory: TemporaryDirectory
    ) throws -> String {
        let nonce = UUID().uuidString.lowercased()
        let systemLine = options.system.map { "echo -n \($0) > $out/system" } ?? ""
        let kernelLines =
            options.kernel.map { _ in
                "ln -s ${kernel}/bzImage $out/kernel\n  ln -s ${kernel}/initrd $out/initrd\n  ln -s ${kernel}/lib/modules $out/kernel-modules"
            } ?? ""
        let kernelVersion = options.kernel ?? "none"
        let expression = """
            let
              \(NixFixtures.mkBinding)
              data = mk "\(name)-data" ''
                mkdir -p $out
                echo \(nonce) > $out/nonce
                head -c \(options.payloadBytes) /dev/urandom > $out/payload
              '';
              kernel = mk "toy-kernel-\(kernelVersion)" ''
                mkdir -p $out/lib/modules
                echo \(kernelVersion) > $out/bzImage
                echo \(kernelVersion) > $out/initrd
              '';
            in mk "\(name)-toplevel" ''
              mkdir -p $out/bin
              echo 26.05-capstan > $out/nixos-version
              \(systemLine)
              \(kernelLines)
              echo ${data} > $out/data-path
              \(activationHook(failedUnits: options.failedUnits, httpPort: options.httpPort))
              cat > $out/bin/toy-switch-script <<'SCRIPT'
            \(options.switchScript)
            SCRIPT
              cat > $out/bin/switch-to-configuration <<EOF
            #!/bin/sh
            \(options.switchPrelude)
            echo "switching to $out (\\$1)"
            echo "switch of \(name) says hello"
            echo "\\$1 $out" >> \(marker).actions
            echo "\(name) \\$1 \\$CAPSTAN_DEPLOYMENT_ID" >> \(marker).deployments
            case "\\$1" in switch|test) echo "switched $out" >> \(marker) ;; esac
            . $out/bin/toy-switch-script
            $out/bin/toy-activate "\\$1"
            exit \(options.switchExitCode)
            EOF
              chmod +x $out/bin/switch-to-configuration
            ''
            """
        let file = directory.sub("config-\(nonce).nix")
        try expression.write(toFile: file, atomically: true, encoding: .utf8)
        return try ProcessRunner.nix(["nix-build", "--no-out-link", file]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Builder lines (of a toy toplevel's derivation) writing `$out/bin/toy-activate`, which a
    /// toy switch calls with its action: on `switch` and `test` it sets the machine's failed units
    /// and (re)starts or stops its HTTP service, in the `ToySystem` that `CAPSTAN_TOY_STATE` names.
    public static func activationHook(failedUnits: [String]?, httpPort: Int?) -> String {
        var body = [
            "#!/bin/sh",
            "case \"$1\" in switch|test) ;; *) exit 0 ;; esac",
            "state=\"$CAPSTAN_TOY_STATE\"",
            "[ -n \"$state\" ] || exit 0",
        ]
        if let failedUnits {
            body.append(": > \"$state/failed-units\"")
            body += failedUnits.map { "echo \($0) >> \"$state/failed-units\"" }
        }
        body += [
            "if [ -f \"$state/http.pid\" ]; then",
            "  pid=$(cat \"$state/http.pid\"); kill \"$pid\" 2>/dev/null",
            "  n=0; while kill -0 \"$pid\" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done",
            "  rm -f \"$state/http.pid\"",
            "fi",
        ]
        if let httpPort {
            body += [
                "setsid python3 -m http.server \(httpPort) --bind 127.0.0.1 --directory \"$state\" >/dev/null 2>&1 </dev/null &",
                "echo $! > \"$state/http.pid\"",
                "echo \"toy service listens on port \(httpPort)\"",
            ]
        }
        return """
            cat > $out/bin/toy-activate <<'TOY'
            \(body.joined(separator: "\n"))
            TOY
            chmod +x $out/bin/toy-activate
            """
    }

    /// A rollback (health-check) script that exits with `code`.
    public static func script(exitCode code: Int, in directory: TemporaryDirectory) throws -> String {
        let nonce = UUID().uuidString.lowercased()
        let expression = """
            derivation {
              name = "health-check";
              system = builtins.currentSystem;
              builder = "/bin/sh";
              PATH = "/usr/bin:/bin";
              args = [ "-c" "printf '#!/bin/sh\\\\necho health check \(nonce)\\\\nexit \(code)\\\\n' > $out; chmod +x $out" ];
            }
            """
        let file = directory.sub("script-\(nonce).nix")
        try expression.write(toFile: file, atomically: true, encoding: .utf8)
        return try ProcessRunner.nix(["nix-build", "--no-out-link", file]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The lines of a marker file.
    public static func switches(_ marker: String) -> [String] {
        ((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Every action the switches of `marker`'s configurations ran, as "<action> <out>".
    public static func actions(_ marker: String) -> [String] { switches(marker + ".actions") }
}

/// What a toy machine's configurations act on besides their marker: its failed systemd units,
/// which a fake `systemctl` on the PATH of `environment` lists, and one small HTTP service. The
/// service is stopped when this value goes.
public final class ToySystem: Sendable {
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/bin", withIntermediateDirectories: true)
        let systemctl = """
            #!/bin/sh
            # Answers only what the agent asks: systemctl --failed …
            case " $* " in *" --failed "*) ;; *) echo "toy systemctl: unsupported: $*" >&2; exit 1 ;; esac
            [ -f "$CAPSTAN_TOY_STATE/failed-units" ] || exit 0
            while read -r unit; do
              [ -n "$unit" ] && echo "$unit loaded failed failed Toy unit $unit"
            done < "$CAPSTAN_TOY_STATE/failed-units"
            exit 0

            """
        let path = directory + "/bin/systemctl"
        try systemctl.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// `CAPSTAN_TOY_STATE`, and `PATH` with the fake `systemctl` first.
    public var environment: [String: String] {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return ["CAPSTAN_TOY_STATE": directory, "PATH": directory + "/bin:" + path]
    }

    public var failedUnits: [String] {
        get {
            ((try? String(contentsOfFile: directory + "/failed-units", encoding: .utf8)) ?? "")
                .split(separator: "\n").map(String.init)
        }
        set {
            try? (newValue.map { $0 + "\n" }.joined()).write(
                toFile: directory + "/failed-units", atomically: true, encoding: .utf8)
        }
    }

    /// The pid of the running HTTP service, nil when there is none.
    public var httpServicePID: pid_t? {
        guard let text = try? String(contentsOfFile: directory + "/http.pid", encoding: .utf8),
            let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    public func stopHTTPService() {
        if let pid = httpServicePID { kill(pid, SIGKILL) }
    }

    /// Ends every process started with this toy system's environment (switches, their children,
    /// the HTTP service), found by `CAPSTAN_TOY_STATE` in their environment: the pid file may be
    /// gone with the test's temporary directory.
    public func endItsProcesses() {
        let marker = Data("CAPSTAN_TOY_STATE=\(directory)\0".utf8)
        let own = getpid()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(name), pid != own,
                let environment = FileManager.default.contents(atPath: "/proc/\(name)/environ"),
                environment.range(of: marker) != nil
            else { continue }
            kill(pid, SIGKILL)
        }
    }

    deinit { endItsProcesses() }
}

/// Polls until `condition` holds or `timeout` passes.
public func eventually(timeout: Double = 60, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(200_000)
    }
    return try condition()
}
