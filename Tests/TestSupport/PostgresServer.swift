import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A throw-away PostgreSQL cluster for tests, started once per test process and shared; each test
/// creates its own database in it.
///
/// The cluster lives in a temporary directory owned by the `postgres` user (initdb refuses root),
/// listens on a free loopback port and is stopped when the test process exits: by an `atexit` hook,
/// and by a watchdog shell that outlives a crashed test process.
public final class PostgresServer: Sendable {
    public let port: Int
    public let directory: String
    public let binDirectory: String

    /// The cluster of this process, started on first use. Fails (never skips) when PostgreSQL is missing.
    public static func shared() throws -> PostgresServer {
        try sharedResult.get()
    }

    private static let sharedResult: Result<PostgresServer, any Error> = Result {
        let server = try PostgresServer.start()
        atexit { PostgresServer.stopSharedAtExit() }
        return server
    }

    /// Creates an empty database with a unique name and returns its URL for `CapstanStore.open`.
    public func createDatabase(prefix: String = "capstan") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))"
        try ProcessRunner.run(
            [binDirectory + "/createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", name], check: true)
        return databaseURL(name)
    }

    public func databaseURL(_ name: String) -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(name)?sslmode=disable"
    }

    /// Runs one SQL statement with psql against `database`, returning its unaligned output.
    @discardableResult
    public func psql(_ statement: String, database: String = "postgres") throws -> String {
        try ProcessRunner.run(
            [
                binDirectory + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", database,
                "-v", "ON_ERROR_STOP=1", "-At", "-c", statement,
            ], check: true
        ).stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the cluster now (fast shutdown: tests keep nothing).
    public func stop() {
        let stop = Process()
        stop.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        stop.arguments = [
            "-u", "postgres", "--", binDirectory + "/pg_ctl", "stop", "-D", dataDirectory, "-m", "immediate", "-w",
        ]
        stop.standardInput = FileHandle.nullDevice
        stop.standardOutput = FileHandle.nullDevice
        stop.standardError = FileHandle.nullDevice
        if (try? stop.run()) != nil { stop.waitUntilExit() }
    }

    private var dataDirectory: String { directory + "/data" }

    private init(port: Int, directory: String, binDirectory: String) {
        self.port = port
        self.directory = directory
        self.binDirectory = binDirectory
    }

    private static func stopSharedAtExit() {
        if case .success(let server) = sharedResult { server.stop() }
    }

    // MARK: Starting

    public struct StartFailure: Error, CustomStringConvertible {
        public var description: String
    }

    static func findBinaries() throws -> String {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["CAPSTAN_PG_BIN"] { candidates.append(explicit) }
        candidates.append("/usr/lib/postgresql/15/bin")
        let installed = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        candidates += installed.sorted().reversed().map { "/usr/lib/postgresql/\($0)/bin" }
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate + "/initdb") {
            return candidate
        }
        throw StartFailure(
            description: """
                PostgreSQL is not installed (no initdb in \(candidates.joined(separator: ", "))): \
                the PostgreSQL storage tests need it. Run scripts/test, which installs it, or \
                apt-get install postgresql (or set CAPSTAN_PG_BIN to its bin directory).
                """)
    }

    static func start() throws -> PostgresServer {
        let bin = try findBinaries()
        guard getpwnam("postgres") != nil else {
            throw StartFailure(description: "user 'postgres' does not exist; install Debian's postgresql package")
        }
        let template = "/tmp/capstan-pg.XXXXXX"
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else {
            throw StartFailure(description: "mkdtemp \(template) failed: errno \(errno)")
        }
        let directory = String(cString: made)
        let data = directory + "/data"
        try ProcessRunner.run(["/bin/chown", "postgres:postgres", directory], check: true)
        try ProcessRunner.run(
            [
                "/usr/sbin/runuser", "-u", "postgres", "--", bin + "/initdb", "-D", data, "-U", "postgres",
                "--auth=trust", "-E", "UTF8", "--no-sync",
            ], check: true)

        var lastFailure = ""
        for _ in 0..<5 {
            let port = try freePort()
            if try startPostmaster(bin: bin, directory: directory, port: port, failure: &lastFailure) {
                startWatchdog(directory: directory, bin: bin)
                return PostgresServer(port: port, directory: directory, binDirectory: bin)
            }
        }
        throw StartFailure(description: "PostgreSQL did not start in \(directory): \(lastFailure)")
    }

    /// Runs the postmaster as a child of this process (pg_ctl's daemon would inherit the descriptor
    /// Foundation watches to see pg_ctl exit, and `Process.waitUntilExit` would never return).
    private static func startPostmaster(bin: String, directory: String, port: Int, failure: inout String) throws
        -> Bool
    {
        let logPath = directory + "/postgres-\(port).log"
        guard FileManager.default.createFile(atPath: logPath, contents: nil),
            let log = FileHandle(forWritingAtPath: logPath)
        else { throw StartFailure(description: "cannot create \(logPath)") }
        defer { try? log.close() }
        let postmaster = Process()
        postmaster.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        postmaster.arguments = [
            "-u", "postgres", "--", bin + "/postgres", "-D", directory + "/data", "-p", String(port), "-k", directory,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=400",
        ]
        postmaster.standardInput = FileHandle.nullDevice
        postmaster.standardOutput = log
        postmaster.standardError = log
        try postmaster.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if !postmaster.isRunning {
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                failure = "postgres exited \(postmaster.terminationStatus): \(text.suffix(2000))"
                return false
            }
            let ready = try ProcessRunner.run([bin + "/pg_isready", "-q", "-h", "127.0.0.1", "-p", String(port)])
            if ready.status == 0 { return true }
            usleep(100_000)
        }
        postmaster.terminate()
        failure = "postgres did not accept connections on port \(port) within 60 s"
        return false
    }

    /// A shell that waits for this process to end, then stops the cluster and removes its directory,
    /// so not even a crashed test run leaves a postmaster behind. Its output goes nowhere, so it
    /// holds no pipe of `swift test` open.
    private static func startWatchdog(directory: String, bin: String) {
        let script = """
            while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
            runuser -u postgres -- '\(bin)/pg_ctl' stop -D '\(directory)/data' -m immediate -w >/dev/null 2>&1
            rm -rf '\(directory)'
            """
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", script]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try? watchdog.run()
    }

    /// A loopback port nobody listens on right now (the kernel picks it for a socket bound to port 0).
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw StartFailure(description: "socket() failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) }
        }
        guard bound == 0 else { throw StartFailure(description: "bind(127.0.0.1:0) failed: errno \(errno)") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else { throw StartFailure(description: "getsockname failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
