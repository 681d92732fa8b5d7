import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One started command and the parent's ends of its pipes, driven by a poll loop on the caller's thread.
final class ChildSession {
    /// A pipe the child writes to.
    private struct Reader {
        var fd: Int32
        var stream: OutputLine.Stream
        var keeps: Bool
        var kept: [UInt8] = []
        var pending: [UInt8] = []
    }

    /// A line longer than this is handed on in pieces, so that one endless line cannot fill memory.
    static let longestLine = 64 << 10
    static let keptLines = 10

    private let invocation: CommandInvocation
    private let pid: pid_t
    private var readers: [Reader] = []
    private var inputFD: Int32 = -1
    private var input: [UInt8] = []
    private var inputOffset = 0
    private var lastLines: [String] = []

    init(_ invocation: CommandInvocation) throws(CommandError) {
        self.invocation = invocation
        var childEnds = SpawnPipes()
        var parentEnds: [(fd: Int32, stream: OutputLine.Stream?, keeps: Bool)] = []
        func makePipe() throws(CommandError) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else {
                throw CommandError(
                    arguments: invocation.arguments, reason: .couldNotStart("cannot create a pipe: errno \(errno)"))
            }
            // Close-on-exec, so that no other child started meanwhile keeps these pipes open.
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return (fds[0], fds[1])
        }
        do {
            if case .bytes(let bytes) = invocation.input {
                let made = try makePipe()
                childEnds.input = made.read
                parentEnds.append((made.write, nil, false))
                input = bytes
            }
            for (output, stream) in [
                (invocation.standardOutput, OutputLine.Stream.standardOutput),
                (invocation.standardError, .standardError),
            ] where output == .capture || output == .lines {
                let made = try makePipe()
                if stream == .standardOutput { childEnds.output = made.write } else { childEnds.error = made.write }
                parentEnds.append((made.read, stream, output == .capture))
            }
            pid = try Spawn.start(invocation, pipes: childEnds)
        } catch {
            for fd in [childEnds.input, childEnds.output, childEnds.error].compactMap({ $0 }) { close(fd) }
            for end in parentEnds { close(end.fd) }
            throw error
        }
        for fd in [childEnds.input, childEnds.output, childEnds.error].compactMap({ $0 }) { close(fd) }
        for end in parentEnds {
            _ = fcntl(end.fd, F_SETFL, fcntl(end.fd, F_GETFL) | O_NONBLOCK)
            if let stream = end.stream {
                readers.append(Reader(fd: end.fd, stream: stream, keeps: end.keeps))
            } else {
                inputFD = end.fd
                _ = CommandRunner.ignoreBrokenPipes
            }
        }
        if inputFD >= 0 && input.isEmpty { closeInput() }
    }

    deinit {
        for reader in readers { close(reader.fd) }
        if inputFD >= 0 { close(inputFD) }
    }

    func run(stopWhen: () -> (any Error)?, onLine: (OutputLine) -> Void) throws -> CommandResult {
        let clock = ContinuousClock()
        let deadline = invocation.timeout.map { clock.now + $0 }
        var stopReason: (any Error)?
        var killAt: ContinuousClock.Instant?
        var exitStatus: Int32?
        var drainUntil: ContinuousClock.Instant?
        var stoppedWhileDraining = false
        var leftOutputOpen = false
        var buffer = [UInt8](repeating: 0, count: 64 << 10)

        while true {
            var pollSet = readers.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            if inputFD >= 0 { pollSet.append(pollfd(fd: inputFD, events: Int16(POLLOUT), revents: 0)) }
            if !pollSet.isEmpty {
                _ = poll(&pollSet, nfds_t(pollSet.count), 50)
            } else if exitStatus == nil {
                usleep(50_000)
            }
            for polled in pollSet where polled.revents != 0 {
                if polled.fd == inputFD {
                    writeInput()
                } else if let index = readers.firstIndex(where: { $0.fd == polled.fd }) {
                    if let overflow = read(index, into: &buffer, onLine: onLine), stopReason == nil {
                        stopReason = overflow
                        if exitStatus != nil {
                            // What it left behind printed too much after it exited: end that, read no more.
                            signalGroup(SIGKILL)
                            stoppedWhileDraining = true
                        }
                    }
                }
            }

            if exitStatus == nil {
                var status: Int32 = 0
                let reaped = waitpid(pid, &status, WNOHANG)
                if reaped == pid || (reaped < 0 && errno == ECHILD) {
                    exitStatus = reaped == pid ? status : -1
                    if inputFD >= 0 { closeInput() }
                    // Whatever of the group outlived a stopped command goes with it.
                    if stopReason != nil { signalGroup(SIGKILL) }
                    drainUntil = clock.now + (stopReason == nil ? invocation.linger : .seconds(1))
                }
            }
            if stopReason == nil, exitStatus == nil {
                if Task.isCancelled {
                    stopReason = CancellationError()
                } else if let reason = stopWhen() {
                    stopReason = reason
                } else if let deadline, let timeout = invocation.timeout, clock.now >= deadline {
                    stopReason = CommandError(
                        arguments: invocation.arguments, reason: .timedOut(timeout), lastLines: lastLines,
                        standardError: keptText(.standardError))
                }
            }
            if stopReason != nil, exitStatus == nil {
                if killAt == nil {
                    signalGroup(SIGTERM)
                    killAt = clock.now + invocation.grace
                } else if let at = killAt, clock.now >= at {
                    signalGroup(SIGKILL)
                    killAt = .now + .seconds(3600)
                }
            }
            if exitStatus != nil {
                if readers.isEmpty { break }
                if stoppedWhileDraining { break }
                if let drainUntil, clock.now >= drainUntil {
                    // A process the command left behind still holds its output open; stop reading it.
                    for reader in readers { flushPending(reader, onLine: onLine) }
                    leftOutputOpen = true
                    break
                }
            }
        }
        if let stopReason { throw stopReason }
        return CommandResult(
            invocation: invocation, termination: Termination(waitStatus: exitStatus ?? -1),
            standardOutput: kept(.standardOutput),
            standardError: kept(.standardError), lastLines: lastLines, leftOutputOpen: leftOutputOpen)
    }

    private var finished: [OutputLine.Stream: [UInt8]] = [:]

    private func kept(_ stream: OutputLine.Stream) -> [UInt8] {
        finished[stream] ?? readers.first(where: { $0.stream == stream })?.kept ?? []
    }

    private func keptText(_ stream: OutputLine.Stream) -> String { String(decoding: kept(stream), as: UTF8.self) }

    /// Reads what is there; at end of file closes the pipe. Returns an error when a kept stream passed its limit.
    private func read(_ index: Int, into buffer: inout [UInt8], onLine: (OutputLine) -> Void) -> CommandError? {
        let count = buffer.withUnsafeMutableBytes { Glibc.read(readers[index].fd, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EAGAIN || errno == EINTR { return nil }
        }
        guard count > 0 else {
            let reader = readers.remove(at: index)
            flushPending(reader, onLine: onLine)
            finished[reader.stream] = reader.kept
            close(reader.fd)
            return nil
        }
        let chunk = buffer[0..<count]
        var overflow: CommandError?
        if readers[index].keeps {
            if readers[index].kept.count + count > invocation.outputLimit {
                overflow = CommandError(
                    arguments: invocation.arguments, reason: .outputTooLarge(limit: invocation.outputLimit),
                    lastLines: lastLines)
            } else {
                readers[index].kept.append(contentsOf: chunk)
            }
        }
        readers[index].pending.append(contentsOf: chunk)
        var start = 0
        let pending = readers[index].pending
        let stream = readers[index].stream
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            deliver(OutputLine(stream: stream, text: String(decoding: pending[start..<newline], as: UTF8.self)), onLine)
            start = newline + 1
        }
        readers[index].pending.removeFirst(start)
        while readers[index].pending.count >= Self.longestLine {
            let piece = readers[index].pending.prefix(Self.longestLine)
            deliver(OutputLine(stream: stream, text: String(decoding: piece, as: UTF8.self)), onLine)
            readers[index].pending.removeFirst(Self.longestLine)
        }
        return overflow
    }

    private func flushPending(_ reader: Reader, onLine: (OutputLine) -> Void) {
        guard !reader.pending.isEmpty else { return }
        deliver(OutputLine(stream: reader.stream, text: String(decoding: reader.pending, as: UTF8.self)), onLine)
    }

    private func deliver(_ line: OutputLine, _ onLine: (OutputLine) -> Void) {
        lastLines.append(line.text)
        if lastLines.count > Self.keptLines { lastLines.removeFirst() }
        onLine(line)
    }

    private func writeInput() {
        let remaining = input.count - inputOffset
        let written = input.withUnsafeBytes { bytes in
            write(inputFD, bytes.baseAddress! + inputOffset, remaining)
        }
        if written > 0 { inputOffset += written }
        if (written < 0 && errno != EAGAIN && errno != EINTR) || inputOffset >= input.count { closeInput() }
    }

    private func closeInput() {
        close(inputFD)
        inputFD = -1
    }

    private func signalGroup(_ signal: Int32) {
        switch invocation.grouping {
        case .ownProcessGroup, .ownSession: kill(-pid, signal)
        case .parentGroup: kill(pid, signal)
        }
    }
}

extension CommandRunner {
    /// A child that exits before it read all its input must not take the parent down with SIGPIPE.
    static let ignoreBrokenPipes: Void = { _ = signal(SIGPIPE, SIG_IGN) }()
}
