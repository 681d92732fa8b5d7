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
    private let token: String
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
        var env = TestEnvironment.nixEnvironment
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
        /// What the `system` file says; nil leaves the file out.
        public var system: String? = nil
        public var payloadBytes: Int = 20_000
        public init() {}
    }

    /// Builds a configuration; its switch appends "switched <out>" to `marker`.
    public static func build(
        name: String, marker: String, options: Options = Options(), in directory: TemporaryDirectory
    ) throws -> String {
        let nonce = UUID().uuidString.lowercased()
        let systemLine = options.system.map { "echo -n \($0) > $out/system" } ?? ""
        let expression = """
            let
              mk = name: script: derivation {
                inherit name;
                system = builtins.currentSystem;
                builder = "/bin/sh";
                PATH = "/usr/bin:/bin";
                args = [ "-c" script ];
              };
              data = mk "\(name)-data" ''
                mkdir -p $out
                echo \(nonce) > $out/nonce
                head -c \(options.payloadBytes) /dev/urandom > $out/payload
              '';
            in mk "\(name)-toplevel" ''
              mkdir -p $out/bin
              echo 26.05-capstan > $out/nixos-version
              \(systemLine)
              echo ${data} > $out/data-path
              cat > $out/bin/switch-to-configuration <<EOF
            #!/bin/sh
            \(options.switchPrelude)
            echo "switching to $out (\\$1)"
            echo "switched $out" >> \(marker)
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
