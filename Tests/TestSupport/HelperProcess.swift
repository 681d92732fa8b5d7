import Foundation

/// A helper program of a test (a client, an attacker) that runs beside it: its output is read a
/// line at a time while it runs, its errors go to a file, and it is killed when the value goes.
public final class HelperProcess: @unchecked Sendable {
    public let process = Process()
    private let output = Pipe()
    public let errorPath: String

    public init(_ arguments: [String], errorPath: String) throws {
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        self.errorPath = errorPath
        FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.standardOutput = output
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The next line of its output, without the newline; nil once it has ended.
    public func readLine() throws -> String? {
        var bytes = Data()
        while let byte = try output.fileHandleForReading.read(upToCount: 1), !byte.isEmpty {
            if byte == Data([UInt8(ascii: "\n")]) { return String(decoding: bytes, as: UTF8.self) }
            bytes += byte
        }
        return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self)
    }

    /// Waits for it to end and returns the rest of its output.
    public func finish() -> String {
        let rest = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: rest, as: UTF8.self)
    }

    public var errors: String { (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "" }

    deinit {
        // SIGKILL: the test process blocks most signals, and its children inherit that mask.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
