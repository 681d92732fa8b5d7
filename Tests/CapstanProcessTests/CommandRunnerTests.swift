import CapstanProcess
import Foundation
import TestSupport
import Testing

/// The one runner every child process goes through, against real programs.
@Suite("Command runner")
struct CommandRunnerTests {
    @Test("an exit status and a signal are told apart")
    func exitAndSignal() throws {
        let exited = try CommandRunner.run(CommandInvocation(["/bin/sh", "-c", "exit 3"]))
        #expect(exited.termination == .exited(3))
        #expect(exited.termination.status == 3)
        let signalled = try CommandRunner.run(CommandInvocation(["/bin/sh", "-c", "kill -TERM $$"]))
        #expect(signalled.termination == .signalled(SIGTERM))
        #expect(signalled.termination.status == 128 + SIGTERM)
        #expect(throws: CommandError.self) { try signalled.checked() }
    }

    @Test("a failure names the command, its status and what it printed on stderr")
    func failureNamesTheCommand() throws {
        let result = try CommandRunner.run(CommandInvocation(["/bin/sh", "-c", "echo oops >&2; exit 2"]))
        do {
            try result.checked()
            Issue.record("a non-zero exit passed")
        } catch {
            #expect(error.description == "`/bin/sh -c echo oops >&2; exit 2` failed (exit 2): oops")
            #expect(error.status == 2)
        }
        #expect {
            try CommandRunner.run(CommandInvocation(["capstan-no-such-program"]))
        } throws: { error in
            "\(error)".contains("capstan-no-such-program is not an executable on PATH")
        }
    }

    @Test("a timeout ends the whole group, grandchildren that ignore SIGTERM included")
    func timeoutKillsTheGroup() throws {
        let directory = try TemporaryDirectory()
        let pids = directory.sub("pids")
        // The grandchild ignores SIGTERM; only the SIGKILL after the grace ends it.
        var invocation = CommandInvocation([
            "/bin/sh", "-c", "(trap '' TERM; exec sleep 300) & echo $! > \(pids); sleep 300",
        ])
        invocation.timeout = .milliseconds(500)
        invocation.grace = .milliseconds(500)
        let started = ContinuousClock.now
        #expect {
            try CommandRunner.run(invocation)
        } throws: { error in
            (error as? CommandError)?.reason == .timedOut(.milliseconds(500))
        }
        #expect(ContinuousClock.now - started < .seconds(30))
        let grandchild = try #require(pid_t(String(contentsOfFile: pids, encoding: .utf8).trimmed))
        #expect(try Self.waitUntilGone(grandchild), "the grandchild \(grandchild) outlived the timeout")
    }

    @Test("cancelling the task stops the command and its group")
    func cancellationKillsTheGroup() async throws {
        let directory = try TemporaryDirectory()
        let pids = directory.sub("pids")
        // The run blocks its thread for as long as the command runs: on a thread of the cooperative
        // pool, a loaded machine could leave no thread to resume this test and cancel it, and the
        // command would run its 300 s to a normal end.
        let thread = DedicatedThreadExecutor()
        defer { thread.stop() }
        let task = Task(executorPreference: thread) {
            try CommandRunner.run(
                CommandInvocation(["/bin/sh", "-c", "sleep 300 & echo $! > \(pids); wait"]))
        }
        for _ in 0..<1200 where !FileManager.default.fileExists(atPath: pids) {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
        // Well before the 300 s the command would run; the margin is for this test's own resumption,
        // which waits for a thread of the cooperative pool when the whole suite loads the machine.
        #expect(ContinuousClock.now - cancelled < .seconds(240), "the command outlived its cancellation")
        let grandchild = try #require(pid_t(String(contentsOfFile: pids, encoding: .utf8).trimmed))
        #expect(try Self.waitUntilGone(grandchild))
    }

    @Test("a stop condition's error is what the caller gets, after the command was stopped")
    func stopCondition() throws {
        struct Stopped: Error {}
        let deadline = ContinuousClock.now + .milliseconds(300)
        #expect(throws: Stopped.self) {
            try CommandRunner.run(CommandInvocation(["/bin/sleep", "300"])) {
                _ in
            } stopWhen: {
                ContinuousClock.now >= deadline ? Stopped() : nil
            }
        }
    }

    @Test("captured output is bounded: a command printing more is stopped")
    func outputBound() throws {
        var invocation = CommandInvocation(["/bin/sh", "-c", "head -c 10000000 /dev/zero; sleep 300"])
        invocation.outputLimit = 100_000
        #expect {
            try CommandRunner.run(invocation)
        } throws: { error in
            (error as? CommandError)?.reason == .outputTooLarge(limit: 100_000)
        }
        // Streamed lines keep no more than the last few, whatever the amount.
        var streamed = CommandInvocation(["/bin/sh", "-c", "seq 1 200000"])
        streamed.standardOutput = .lines
        streamed.outputLimit = 100
        var count = 0
        let result = try CommandRunner.run(streamed) { _ in count += 1 }
        #expect(count == 200_000)
        #expect(result.standardOutput.isEmpty)
        #expect(result.lastLines.last == "200000")
    }

    @Test("a line without end comes in pieces, not as one growing buffer")
    func longLines() throws {
        var lengths: [Int] = []
        _ = try CommandRunner.run(CommandInvocation(["/bin/sh", "-c", "head -c 200000 /dev/zero | tr '\\\\0' x"])) {
            lengths.append($0.text.utf8.count)
        }
        #expect(lengths.reduce(0, +) == 200_000)
        #expect(lengths.allSatisfy { $0 <= 64 << 10 })
    }

    @Test("a slow reader holds the command back (back-pressure) instead of buffering its output")
    func backPressure() throws {
        let directory = try TemporaryDirectory()
        let done = directory.sub("done")
        var invocation = CommandInvocation([
            "/bin/sh", "-c", "head -c 4000000 /dev/zero | tr '\\\\0' '\\n' | tr '\\n' 'y' | fold -w 999; touch \(done)",
        ])
        invocation.standardOutput = .lines
        var finishedWhileHeld: Bool?
        var lines = 0
        _ = try CommandRunner.run(invocation) { _ in
            lines += 1
            if lines == 1 {
                Thread.sleep(forTimeInterval: 1)
                finishedWhileHeld = FileManager.default.fileExists(atPath: done)
            }
        }
        #expect(finishedWhileHeld == false)
        #expect(lines >= 4000)
        #expect(FileManager.default.fileExists(atPath: done))
    }

    @Test("the environment is exactly the one given; inherited, it lacks what is removed")
    func environment() throws {
        setenv("CAPSTAN_PROCESS_TEST_SECRET", "hunter2", 1)
        defer { unsetenv("CAPSTAN_PROCESS_TEST_SECRET") }
        let inherited = try CommandRunner.run(
            CommandInvocation(
                ["env"],
                environment: ProcessEnvironment.inherited(
                    removing: ["CAPSTAN_PROCESS_TEST_SECRET"], merging: ["ADDED": "yes"]))
        ).checked().outputText
        #expect(!inherited.contains("hunter2"))
        #expect(inherited.contains("ADDED=yes\n"))
        #expect(inherited.contains("PATH="))
        let exact = try CommandRunner.run(
            CommandInvocation(["/usr/bin/env"], environment: ["ONLY": "this"])
        ).checked().outputText
        #expect(exact == "ONLY=this\n")
        let everything = try CommandRunner.run(CommandInvocation(["env"])).checked().outputText
        #expect(everything.contains("CAPSTAN_PROCESS_TEST_SECRET=hunter2"))
    }

    @Test("stdin from bytes (more than a pipe holds) and from a file; the working directory")
    func inputAndDirectory() throws {
        let directory = try TemporaryDirectory()
        var fromBytes = CommandInvocation(["wc", "-c"])
        fromBytes.input = .bytes(Array(repeating: 65, count: 3_000_000))
        #expect(try CommandRunner.run(fromBytes).checked().outputText.trimmed == "3000000")
        let file = directory.sub("input")
        try "from a file\n".write(toFile: file, atomically: true, encoding: .utf8)
        var fromFile = CommandInvocation(["cat"])
        fromFile.input = .file(file)
        #expect(try CommandRunner.run(fromFile).checked().outputText == "from a file\n")
        var inDirectory = CommandInvocation(["pwd"])
        inDirectory.workingDirectory = directory.path
        #expect(try CommandRunner.run(inDirectory).checked().outputText.trimmed == directory.path)
        // A command that stops reading early does not take the caller down with SIGPIPE.
        var early = CommandInvocation(["head", "-c", "1"])
        early.input = .bytes(Array(repeating: 66, count: 3_000_000))
        #expect(try CommandRunner.run(early).checked().outputText == "B")
    }

    @Test("output to a file, and a daemon holding the pipe does not hold the caller past the linger")
    func filesAndLinger() throws {
        let directory = try TemporaryDirectory()
        let log = directory.sub("log")
        var toFile = CommandInvocation(["/bin/sh", "-c", "echo out; echo err >&2"])
        toFile.standardOutput = .file(log)
        toFile.standardError = .file(log)
        try CommandRunner.run(toFile).checked()
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "out\nerr\n")
        let pids = directory.sub("pids")
        var daemon = CommandInvocation(["/bin/sh", "-c", "sleep 300 & echo $! > \(pids); echo started"])
        daemon.linger = .milliseconds(300)
        let started = ContinuousClock.now
        let result = try CommandRunner.run(daemon).checked()
        #expect(ContinuousClock.now - started < .seconds(20))
        #expect(result.outputText == "started\n")
        let left = try #require(pid_t(String(contentsOfFile: pids, encoding: .utf8).trimmed))
        kill(left, SIGKILL)
        #expect(try Self.waitUntilGone(left))
    }

    /// True once `pid` no longer runs (gone, or a zombie nobody reaped yet), within ten seconds.
    static func waitUntilGone(_ pid: pid_t) throws -> Bool {
        for _ in 0..<200 {
            let state = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?
                .split(separator: ")").last?.split(separator: " ").first
            if state == nil || state == "Z" { return true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}
