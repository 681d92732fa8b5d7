import ArgumentParser
import CapstanClient
import Foundation
import Synchronization

struct PushCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "push",
        abstract: "Push store paths and their closures to a cache.",
        discussion: """
            Computes the closure with the local Nix, asks the server which paths it lacks, and uploads \
            those (NARs compressed with zstd); the server stores each only after the paths it references. \
            Needs a push token of the cache (or an admin token).
            """
    )

    @OptionGroup var client: ClientOptions
    @Argument(help: "The cache to push to.") var cache: String
    @Argument(help: "Store paths (or symlinks to them, such as ./result).") var paths: [String] = []
    @Flag(help: "Read store paths from stdin, one per line.") var stdin = false
    @Option(help: "NARs compressed and sent at once; 4× as many uploads may await their answer.") var jobs: Int = 4
    @Option(help: "Retries after a transient failure.") var retries: Int = 3
    @Flag(help: "Print a JSON summary on stdout.") var json = false

    func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1") }
        guard stdin || !paths.isEmpty else { throw ValidationError("give store paths, or --stdin to read them") }
    }

    func run() async throws {
        var all = paths
        if stdin {
            while let line = readLine() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if !trimmed.isEmpty { all.append(trimmed) }
            }
        }
        var options = PushOptions()
        options.jobs = jobs
        options.retries = retries
        let display = PushProgressDisplay(interactive: isatty(STDERR_FILENO) == 1)
        let pusher = Pusher(client: client.makeClient(), cache: cache, options: options)
        let summary: PushSummary
        do {
            summary = try await pusher.push(paths: all) { display.handle($0) }
        } catch {
            display.finish()
            throw error
        }
        display.finish()
        if json { return try printJSON(summary) }
        printError(
            "Pushed \(summary.uploaded.count) paths (\(ByteFormat.string(Int64(summary.narBytes))) NAR, "
                + "\(ByteFormat.string(Int64(summary.storedBytes))) stored) to '\(cache)' in "
                + String(format: "%.1fs", summary.seconds) + "; \(summary.alreadyPresent) were already there.")
    }
}

/// Progress on stderr: one redrawn line on a terminal, a line per path otherwise.
final class PushProgressDisplay: Sendable {
    private struct State {
        var total = 0
        var done = 0
        var bytesTotal: UInt64 = 0
        var bytesDone: UInt64 = 0
        var lastDraw = ContinuousClock.now
        var started = ContinuousClock.now
    }

    private let state = Mutex(State())
    private let interactive: Bool

    init(interactive: Bool) {
        self.interactive = interactive
    }

    func handle(_ event: PushEvent) {
        switch event {
        case .planned(let closure, let missing, let bytes):
            state.withLock {
                $0.total = missing
                $0.bytesTotal = bytes
                $0.started = .now
            }
            printError("\(closure) paths in the closure, \(missing) to upload (\(ByteFormat.string(Int64(bytes)))).")
        case .started:
            break
        case .progress(let bytes):
            let line: String? = state.withLock { state in
                state.bytesDone &+= bytes
                guard interactive, ContinuousClock.now - state.lastDraw > .milliseconds(100) else { return nil }
                state.lastDraw = .now
                return Self.line(state)
            }
            if let line { FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8)) }
        case .uploaded(let path, let narSize, _):
            let line: String = state.withLock { state in
                state.done += 1
                return interactive
                    ? "\r\u{1B}[K" + Self.line(state)
                    : "[\(state.done)/\(state.total)] uploaded \(path) (\(ByteFormat.string(Int64(narSize))))\n"
            }
            FileHandle.standardError.write(Data(line.utf8))
        case .retrying(let path, let attempt, let error):
            printError("\(interactive ? "\r\u{1B}[K" : "")retrying \(path) (attempt \(attempt + 1)): \(error)")
        }
    }

    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private static func line(_ state: State) -> String {
        let elapsed = ContinuousClock.now - state.started
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let rate = Double(state.bytesDone) / seconds
        return "[\(state.done)/\(state.total)] \(ByteFormat.string(Int64(state.bytesDone))) of "
            + "\(ByteFormat.string(Int64(state.bytesTotal))), \(ByteFormat.string(Int64(rate)))/s"
    }
}
