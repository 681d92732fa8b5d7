import Foundation

/// A real `capstan serve` process on a free loopback port, with its own data directory.
public final class ServerProcess: @unchecked Sendable {
    public let port: Int
    public let dataDirectory: String
    public let url: String
    public let logPath: String
    public private(set) var process: Process
    private let extraArguments: [String]
    private let environment: [String: String]
    /// `ulimit -n` for the server process, when set: started through `sh -c 'ulimit -n N; exec …'`.
    private let descriptorLimit: Int?

    public init(
        dataDirectory: String, port: Int? = nil, arguments: [String] = [], environment: [String: String] = [:],
        descriptorLimit: Int? = nil
    ) throws {
        self.port = try port ?? FreePort.find()
        self.dataDirectory = dataDirectory
        self.url = "http://127.0.0.1:\(self.port)"
        self.logPath = dataDirectory + ".log"
        self.extraArguments = arguments
        self.environment = environment
        self.descriptorLimit = descriptorLimit
        process = Process()
        try start()
    }

    /// The admin token written on first start.
    public var adminToken: String {
        get throws {
            try String(contentsOfFile: dataDirectory + "/admin-token", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    public func start() throws {
        let process = Process()
        let arguments =
            ["serve", "--data-dir", dataDirectory, "--listen", "127.0.0.1:\(port)", "--log-level", "debug"]
            + extraArguments
        if let descriptorLimit {
            // `exec` keeps the process id, so stopping and the watchdog reach the server itself.
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments =
                ["-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\"", TestEnvironment.capstanBinary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: TestEnvironment.capstanBinary)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        if !FileManager.default.fileExists(atPath: logPath) {
            FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        ProcessWatchdog.killWhenTestsEnd(process.processIdentifier)
        try waitUntilHealthy()
    }

    public func waitUntilHealthy(timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning {
                throw TestFailure("capstan serve exited with \(process.terminationStatus): \(log)")
            }
            let result = try ProcessRunner.run(["curl", "-sf", "-o", "/dev/null", "\(url)/health"])
            if result.status == 0 { return }
            usleep(50_000)
        }
        throw TestFailure("capstan serve did not become healthy within \(timeout)s: \(log)")
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// SIGKILL: no chance to clean up, as in a crash.
    public func kill() {
        if process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { kill() }
}

public enum FreePort {
    /// A loopback port nobody listens on right now.
    public static func find() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0 else { throw TestFailure("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw TestFailure("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
