import CapstanModel
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A command the runner started that did not exit 0.
public struct CommandFailure: Error, CustomStringConvertible, Sendable {
    public var command: [String]
    public var status: Int32
    /// The last lines it printed, so the reason says what went wrong without opening the log.
    public var lastLines: [String]
    /// Set when it was stopped for taking longer than this.
    public var timedOut: TimeSpan?

    public init(command: [String], status: Int32, lastLines: [String], timedOut: TimeSpan? = nil) {
        self.command = command
        self.status = status
        self.lastLines = lastLines
        self.timedOut = timedOut
    }

    public var commandLine: String { command.joined(separator: " ") }

    public var description: String {
        let tail = lastLines.suffix(3).joined(separator: " | ")
        let what = timedOut.map { "did not finish within \($0) and was stopped" } ?? "exited with status \(status)"
        return "`\(commandLine)` \(what)" + (tail.isEmpty ? "" : ": \(tail)")
    }
}

/// Runs commands for a deployment with every line they print going to the deployment's log.
struct CommandExecutor: Sendable {
    let log: DeploymentLog
    /// Added to the inherited environment of every command.
    let extraEnvironment: [String: String]

    /// Runs `command` (a program on PATH or an absolute path) in a process group of its own, stdin
    /// from /dev/null, and returns what it printed on stdout. Throws `CommandFailure` unless it exits 0
    /// within `timeout`, and `Interruption` when `watch` stops it first; a stopped command's whole
    /// process group is ended.
    @discardableResult
    func run(_ command: [String], logStdout: Bool = true, timeout: Duration? = nil, watch: InterruptionWatch? = nil)
        throws -> String
    {
        guard let program = command.first else { return "" }
        let environment = ChildEnvironment.current(merging: extraEnvironment)
        log.append("$ \(command.joined(separator: " "))")
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            throw CommandFailure(command: command, status: 127, lastLines: ["cannot create a pipe: errno \(errno)"])
        }
        // Close-on-exec, so that no other child started meanwhile keeps these pipes open.
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let pid: pid_t
        do {
            pid = try ProcessSpawner.spawn(
                command, environment: environment, stdout: .existing(outPipe[1]), stderr: .existing(errPipe[1]),
                newSession: true)
        } catch {
            (outPipe + errPipe).forEach { close($0) }
            log.append("\(error)")
            throw CommandFailure(command: command, status: 127, lastLines: ["\(error)"])
        }
        close(outPipe[1])
        close(errPipe[1])
        let tail = Mutex<[String]>([])
        let captured = Mutex<String>("")
        let log = self.log
        let group = DispatchGroup()
        for (fd, isStdout) in [(outPipe[0], true), (errPipe[0], false)] {
            let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
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
        let stop = Self.stopCondition(timeout: timeout, watch: watch)
        let (status, stopped) = ProcessSpawner.wait(for: pid, stoppingWhen: stop)
        // A daemon the command started may keep the pipes open; do not wait for it forever.
        if group.wait(timeout: .now() + .seconds(5)) == .timedOut {
            log.append("(\(program) left a process behind that still holds its output open)")
        }
        let lines = tail.withLock { $0 }
        switch stopped {
        case .interrupted(let interruption)?:
            log.append(
                "Stopped \(program): " + (interruption == .cancelled ? "the deployment was cancelled" : "timed out"))
            throw interruption
        case .timedOut(let limit)?:
            log.append("Stopped \(program): it did not finish within \(TimeSpan(limit))")
            throw CommandFailure(command: command, status: status, lastLines: lines, timedOut: TimeSpan(limit))
        case nil:
            break
        }
        guard status == 0 else {
            log.append("\(program) exited with status \(status)")
            throw CommandFailure(command: command, status: status, lastLines: lines)
        }
        return captured.withLock { $0 }
    }

    private enum Stop {
        case interrupted(Interruption)
        case timedOut(Duration)
    }

    private static func stopCondition(timeout: Duration?, watch: InterruptionWatch?) -> () -> Stop? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        return {
            if let interruption = watch?.interruption() { return .interrupted(interruption) }
            if let deadline, let timeout, ContinuousClock.now >= deadline { return .timedOut(timeout) }
            return nil
        }
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
