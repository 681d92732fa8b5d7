import Foundation

/// What a test needs to drive real programs: temporary directories, processes, the built `capstan`.
public enum TestEnvironment {
    /// The `capstan` executable built alongside the tests (or `CAPSTAN_BIN`).
    public static var capstanBinary: String {
        if let explicit = ProcessInfo.processInfo.environment["CAPSTAN_BIN"] { return explicit }
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var dir = bundleDir
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("capstan").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return bundleDir.appendingPathComponent("capstan").path
    }

    /// Environment for running `nix` in a container: no sandbox, the new CLI enabled.
    public static var nixEnvironment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["NIX_CONFIG"] =
            "experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n"
        return env
    }
}

/// A directory removed when the value is deinitialised.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "capstan-test") throws {
        let template = (NSTemporaryDirectory() as NSString).appendingPathComponent("\(prefix).XXXXXX")
        var bytes = Array(template.utf8CString)
        guard let result = mkdtemp(&bytes) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        path = String(cString: result)
    }

    public func sub(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    deinit {
        // Restored trees may contain read-only directories; make them writable before removing.
        _ = try? ProcessRunner.run(["/bin/chmod", "-R", "u+w", path])
        try? FileManager.default.removeItem(atPath: path)
    }
}

public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data
    public var stdoutString: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrString: String { String(decoding: stderr, as: UTF8.self) }
}

public struct ProcessFailure: Error, CustomStringConvertible {
    public var arguments: [String]
    public var result: ProcessResult
    public var description: String {
        "\(arguments.joined(separator: " ")) exited \(result.status): \(result.stderrString)"
    }
}

public enum ProcessRunner {
    /// Runs a program to completion, capturing stdout and stderr (stdin from `input` or /dev/null).
    @discardableResult
    public static func run(
        _ arguments: [String], environment: [String: String]? = nil, input: Data? = nil,
        currentDirectory: String? = nil, check: Bool = false
    ) throws -> ProcessResult {
        let process = Process()
        var args = arguments
        let exe = args.removeFirst()
        if exe.hasPrefix("/") {
            process.executableURL = URL(fileURLWithPath: exe)
            process.arguments = args
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [exe] + args
        }
        if let environment { process.environment = environment }
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe = Pipe()
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data()
        nonisolated(unsafe) var err = Data()
        DispatchQueue.global().async(group: group) { out = outPipe.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { err = errPipe.fileHandleForReading.readDataToEndOfFile() }
        if let input {
            try? inPipe.fileHandleForWriting.write(contentsOf: input)
            try? inPipe.fileHandleForWriting.close()
        }
        process.waitUntilExit()
        group.wait()
        let result = ProcessResult(status: process.terminationStatus, stdout: out, stderr: err)
        if check && result.status != 0 { throw ProcessFailure(arguments: arguments, result: result) }
        return result
    }

    /// Runs `nix` tooling with the container-friendly configuration.
    @discardableResult
    public static func nix(_ arguments: [String], input: Data? = nil) throws -> ProcessResult {
        try run(arguments, environment: TestEnvironment.nixEnvironment, input: input, check: true)
    }
}
