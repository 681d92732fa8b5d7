import CapstanModel
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `<state>/deployments/<id>/`: what the agent and its detached runner share about one deployment.
///
/// The agent writes `order.json`; the runner writes `log.ndjson`, `started.json` and `result.json`;
/// the agent keeps its own progress in `forwarded`, `sent-started`, `sent-closure` and `reported`,
/// so a restarted agent neither loses nor repeats what it already told the server.
public struct DeploymentDirectory: Sendable {
    public let id: String
    public let path: String

    public init(stateDirectory: String, id: String) throws {
        guard Self.isSafeName(id) else { throw DeploymentDirectoryError.unsafeID(id) }
        self.id = id
        self.path = "\(stateDirectory)/deployments/\(id)"
    }

    /// A deployment id becomes a directory name, so it must not be able to walk out of the state directory.
    static func isSafeName(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 128 && !id.hasPrefix(".")
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" }
    }

    public var orderFile: String { path + "/order.json" }
    public var logFile: String { path + "/log.ndjson" }
    public var startedFile: String { path + "/started.json" }
    public var resultFile: String { path + "/result.json" }
    public var pidFile: String { path + "/runner.pid" }
    /// The runner's own stdout and stderr, for what happens before it can log.
    public var runnerOutputFile: String { path + "/runner.out" }
    /// Written by the agent when the server cancels the deployment; the runner watches for it.
    public var cancelMarker: String { path + "/cancel" }
    /// The garbage collector root that keeps the realised paths alive until the profile holds them
    /// (`nix-store --add-root` names a second path `gcroot-2`, and so on).
    public var gcRoot: String { path + "/gcroot" }
    var forwardedFile: String { path + "/forwarded" }
    var sentStartedMarker: String { path + "/sent-started" }
    var sentClosureMarker: String { path + "/sent-closure" }
    var reportedMarker: String { path + "/reported" }

    public var exists: Bool { FileManager.default.fileExists(atPath: orderFile) }

    public func create(task: DeploymentTask) throws {
        try StateFiles.makePrivateDirectory(path)
        try StateFiles.writeJSON(task, to: orderFile)
    }

    public func task() throws -> DeploymentTask {
        guard let task = try StateFiles.readJSON(DeploymentTask.self, from: orderFile) else {
            throw DeploymentDirectoryError.missingOrder(orderFile)
        }
        return task
    }

    public func result() throws -> DeploymentOutcome? {
        try StateFiles.readJSON(DeploymentOutcome.self, from: resultFile)
    }

    public func writeResult(_ outcome: DeploymentOutcome) throws {
        try StateFiles.writeJSON(outcome, to: resultFile, mode: 0o644)
    }

    public func started() throws -> DeploymentStarted? {
        try StateFiles.readJSON(DeploymentStarted.self, from: startedFile)
    }

    public func writeStarted(_ started: DeploymentStarted) throws {
        try StateFiles.writeJSON(started, to: startedFile, mode: 0o644)
    }

    /// The pid the runner recorded once it held the lock.
    public func runnerPID() -> pid_t? {
        guard let text = try? String(contentsOfFile: pidFile, encoding: .utf8) else { return nil }
        return pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    public func writeRunnerPID(_ pid: pid_t) throws {
        try StateFiles.writeAtomically(Data("\(pid)\n".utf8), to: pidFile, mode: 0o644)
    }

    public var isCancelRequested: Bool { FileManager.default.fileExists(atPath: cancelMarker) }

    public func requestCancel() throws { try setMarker(cancelMarker) }

    /// The links `nix-store --add-root gcroot` made; removing them lets the collector have what
    /// no profile holds.
    public func gcRoots() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { $0 == "gcroot" || $0.hasPrefix("gcroot-") }.sorted().map { path + "/" + $0 }
    }

    public func removeGCRoots() {
        for root in gcRoots() { try? FileManager.default.removeItem(atPath: root) }
    }

    /// Every log line, in order (for tests and diagnostics; the agent reads incrementally).
    public func logLines() throws -> [LogLine] {
        let (lines, _) = try readLog(from: 0, maxLines: .max)
        return lines
    }

    /// Complete log lines from byte `offset` on, and the offset just after the last one returned.
    func readLog(from offset: UInt64, maxLines: Int) throws -> ([LogLine], UInt64) {
        guard let handle = FileHandle(forReadingAtPath: logFile) else { return ([], offset) }
        defer { try? handle.close() }
        try handle.seek(toOffset: offset)
        let data = try handle.readToEnd() ?? Data()
        var lines: [LogLine] = []
        var consumed = 0
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var start = data.startIndex
        while lines.count < maxLines, let newline = data[start...].firstIndex(of: UInt8(ascii: "\n")) {
            let record = data[start..<newline]
            if let line = try? decoder.decode(LogLine.self, from: record) {
                lines.append(line)
            } else if !record.isEmpty {
                lines.append(LogLine(time: Date(), line: String(decoding: record, as: UTF8.self)))
            }
            consumed += newline - start + 1
            start = newline + 1
        }
        return (lines, offset + UInt64(consumed))
    }

    func forwardedOffset() -> UInt64 {
        guard let text = try? String(contentsOfFile: forwardedFile, encoding: .utf8) else { return 0 }
        return UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    func setForwardedOffset(_ offset: UInt64) throws {
        try StateFiles.writeAtomically(Data("\(offset)\n".utf8), to: forwardedFile, mode: 0o644)
    }

    func hasMarker(_ marker: String) -> Bool { FileManager.default.fileExists(atPath: marker) }

    func setMarker(_ marker: String) throws {
        try StateFiles.writeAtomically(Data(), to: marker, mode: 0o644)
    }

    /// Every deployment directory under the state directory, oldest first.
    static func all(in stateDirectory: String) -> [DeploymentDirectory] {
        let root = stateDirectory + "/deployments"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        let directories = names.compactMap { try? DeploymentDirectory(stateDirectory: stateDirectory, id: $0) }
            .filter(\.exists)
        return directories.sorted { $0.creationDate < $1.creationDate }
    }

    var creationDate: Date {
        let attributes = try? FileManager.default.attributesOfItem(atPath: orderFile)
        return attributes?[.modificationDate] as? Date ?? .distantPast
    }
}

public enum DeploymentDirectoryError: Error, CustomStringConvertible, Equatable {
    case unsafeID(String)
    case missingOrder(String)

    public var description: String {
        switch self {
        case .unsafeID(let id):
            "deployment id \(id.debugDescription) is not a plain name (letters, digits, '-', '_'); refusing to use it as a directory"
        case .missingOrder(let path):
            "\(path) does not exist: the agent writes it before starting `capstan deploy run`; check --state-dir and --id"
        }
    }
}

/// Appends log lines to `log.ndjson`, one JSON object per line, each with a single `write`
/// on an `O_APPEND` descriptor so that a reader never sees two lines interleaved.
public final class DeploymentLog: Sendable {
    private let descriptor: Int32
    public let path: String

    public init(path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StateFileError.errno("open", path) }
        self.descriptor = fd
        self.path = path
    }

    public func append(_ text: String) {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(LogLine(time: Date(), line: text)) else { return }
        data.append(UInt8(ascii: "\n"))
        data.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            while offset < buffer.count {
                let n = write(descriptor, base + offset, buffer.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                offset += n
            }
        }
    }

    deinit { close(descriptor) }
}
