import Foundation
import Synchronization

/// A command the runner started that did not exit 0.
public struct CommandFailure: Error, CustomStringConvertible, Sendable {
    public var command: [String]
    public var status: Int32
    /// The last lines it printed, so the reason says what went wrong without opening the log.
    public var lastLines: [String]

    public var commandLine: String { command.joined(separator: " ") }

    public var description: String {
        let tail = lastLines.suffix(3).joined(separator: " | ")
        return "`\(commandLine)` exited with status \(status)" + (tail.isEmpty ? "" : ": \(tail)")
    }
}

/// Runs commands for a deployment with every line they print going to the deployment's log.
struct CommandExecutor: Sendable {
    let log: DeploymentLog
    /// Added to the inherited environment of every command.
    let extraEnvironment: [String: String]

    /// Runs `command` (a program on PATH or an absolute path), stdin from /dev/null, and returns
    /// what it printed on stdout; throws `CommandFailure` unless it exits 0.
    @discardableResult
    func run(_ command: [String], logStdout: Bool = true) throws -> String {
        guard let program = command.first else { return "" }
        let process = Process()
        if program.hasPrefix("/") {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = Array(command.dropFirst())
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = command
        }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(extraEnvironment) { $1 }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        log.append("$ \(command.joined(separator: " "))")
        do {
            try process.run()
        } catch {
            log.append("cannot start \(program): \(error)")
            throw CommandFailure(command: command, status: 127, lastLines: ["cannot start \(program): \(error)"])
        }
        let tail = Mutex<[String]>([])
        let captured = Mutex<String>("")
        let log = self.log
        let group = DispatchGroup()
        for (pipe, isStdout) in [(stdout, true), (stderr, false)] {
            let handle = pipe.fileHandleForReading
            DispatchQueue.global().async(group: group) {
                Self.forEachLine(of: handle) { line in
                    if isStdout { captured.withLock { $0 += line + "\n" } }
                    if !isStdout || logStdout { log.append(line) }
                    tail.withLock {
                        $0.append(line)
                        if $0.count > 10 { $0.removeFirst() }
                    }
                }
            }
        }
        process.waitUntilExit()
        // A daemon the command started may keep the pipes open; do not wait for it forever.
        if group.wait(timeout: .now() + .seconds(5)) == .timedOut {
            log.append("(\(program) left a process behind that still holds its output open)")
        }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        guard status == 0 else {
            let lines = tail.withLock { $0 }
            log.append("\(program) exited with status \(status)")
            throw CommandFailure(command: command, status: status, lastLines: lines)
        }
        return captured.withLock { $0 }
    }

    /// Calls `body` with each line read from `handle` until end of file (a last unterminated line included).
    private static func forEachLine(of handle: FileHandle, _ body: (String) -> Void) {
        var pending = Data()
        while true {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                body(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                pending.removeSubrange(pending.startIndex...newline)
            }
        }
        if !pending.isEmpty { body(String(decoding: pending, as: UTF8.self)) }
    }
}
