import AsyncHTTPClient
import CapstanModel
import Compression
import Dispatch
import Foundation
import NIOCore
import NixCore
import Synchronization

public struct PushOptions: Sendable {
    /// Uploads running at once.
    public var jobs: Int = 4
    /// Further attempts after a transient failure (5xx, 429, network).
    public var retries: Int = 3
    public var zstdLevel: Int32 = 3
    /// First backoff delay; doubled on each retry, with jitter.
    public var retryDelay: Duration = .seconds(1)

    public init() {}
}

public enum PushEvent: Sendable {
    case planned(closure: Int, missing: Int, narBytes: UInt64)
    case started(path: String)
    /// NAR bytes read from the store since the last report.
    case progress(bytes: UInt64)
    case uploaded(path: String, narSize: UInt64, fileSize: UInt64)
    case retrying(path: String, attempt: Int, error: String)
}

public struct PushSummary: Codable, Sendable {
    public var cache: String
    public var closure: Int
    public var alreadyPresent: Int
    public var uploaded: [String]
    public var narBytes: UInt64
    public var storedBytes: UInt64
    public var seconds: Double
}

public struct PushError: Error, CustomStringConvertible {
    public var path: String
    public var underlying: any Error
    public var description: String { "pushing \(path): \(underlying)" }
}

/// Pushes closures: asks the server which paths it lacks, then uploads those concurrently,
/// each only after the paths it references, so the cache never shows a path without its closure.
public struct Pusher: Sendable {
    let client: CapstanAPIClient
    let cache: String
    let options: PushOptions

    public init(client: CapstanAPIClient, cache: String, options: PushOptions = .init()) {
        self.client = client
        self.cache = cache
        self.options = options
    }

    public func push(paths: [String], onEvent: @escaping @Sendable (PushEvent) -> Void) async throws -> PushSummary {
        let started = ContinuousClock.now
        let closure = try LocalNix.closure(of: paths)
        var missingHashes = Set<String>()
        let hashes = closure.map(\.path.hashPart)
        for start in stride(from: 0, to: hashes.count, by: 1000) {
            let chunk = Array(hashes[start..<min(start + 1000, hashes.count)])
            missingHashes.formUnion(try await client.missing(cache: cache, hashes: chunk))
        }
        let missing = closure.filter { missingHashes.contains($0.path.hashPart) }
        let narBytes = missing.reduce(UInt64(0)) { $0 + $1.narSize }
        onEvent(.planned(closure: closure.count, missing: missing.count, narBytes: narBytes))

        var schedule = UploadSchedule(missing)
        var uploaded: [String] = []
        var storedBytes: UInt64 = 0
        try await withThrowingTaskGroup(of: (String, PathUploadResult).self) { group in
            var running = 0
            func startReady() {
                while running < max(1, options.jobs), let next = schedule.popReady() {
                    running += 1
                    group.addTask { (next.path.path, try await upload(next, onEvent: onEvent)) }
                }
            }
            startReady()
            while let (path, result) = try await group.next() {
                running -= 1
                uploaded.append(path)
                storedBytes += result.fileSize
                onEvent(.uploaded(path: path, narSize: result.narSize, fileSize: result.fileSize))
                schedule.complete(path)
                startReady()
            }
        }
        return PushSummary(
            cache: cache, closure: closure.count, alreadyPresent: closure.count - missing.count, uploaded: uploaded,
            narBytes: narBytes, storedBytes: storedBytes,
            seconds: Double((ContinuousClock.now - started).components.attoseconds) / 1e18
                + Double((ContinuousClock.now - started).components.seconds))
    }

    /// One path, retried with jittered exponential backoff on transient failures.
    func upload(_ info: LocalPathInfo, onEvent: @escaping @Sendable (PushEvent) -> Void) async throws
        -> PathUploadResult
    {
        let path = info.path.path
        onEvent(.started(path: path))
        let uploadInfo = PathUploadInfo(
            storePath: info.path, narHash: info.narHash, narSize: info.narSize, references: info.references,
            deriver: info.deriver, sigs: info.signatures ?? [], ca: info.ca)
        var attempt = 0
        while true {
            attempt += 1
            let channel = ChunkChannel()
            let sent = Atomic<UInt64>(0)
            startProducer(path: path, channel: channel) { bytes in
                sent.add(bytes, ordering: .relaxed)
                onEvent(.progress(bytes: bytes))
            }
            do {
                defer { channel.cancel() }
                return try await client.uploadPath(
                    cache: cache, info: uploadInfo, contentEncoding: "zstd", body: .stream(channel, length: .unknown))
            } catch let error as ClientError where error.isTransient && attempt <= options.retries {
                onEvent(.progress(bytes: 0 &- sent.load(ordering: .relaxed)))
                onEvent(.retrying(path: path, attempt: attempt, error: error.description))
                let base = options.retryDelay * (1 << (attempt - 1))
                try await Task.sleep(for: base + base * Double.random(in: 0..<0.5))
            } catch {
                throw PushError(path: path, underlying: error)
            }
        }
    }

    /// Serialises and compresses the NAR on a thread of its own; the channel's back-pressure
    /// keeps only a few chunks in memory whatever the path's size.
    private func startProducer(path: String, channel: ChunkChannel, onBytes: @escaping @Sendable (UInt64) -> Void) {
        let level = options.zstdLevel
        DispatchQueue.global().async {
            do {
                var chunker = CompressedChunker(encoder: try ZstdEncoder(level: level)) { try channel.send($0) }
                _ = try NarWriter().pipelinedDump(path: path) { chunk in
                    onBytes(UInt64(chunk.count))
                    try chunker.process(chunk)
                }
                try chunker.finish()
                channel.finish()
            } catch {
                channel.finish(throwing: error)
            }
        }
    }
}

/// Missing paths in an order where every path comes after the missing paths it references.
struct UploadSchedule {
    private var waitingOn: [String: Set<String>] = [:]
    private var dependents: [String: [String]] = [:]
    private var ready: [LocalPathInfo] = []
    private var infos: [String: LocalPathInfo] = [:]

    init(_ missing: [LocalPathInfo]) {
        let paths = Set(missing.map(\.path.path))
        for info in missing {
            let path = info.path.path
            infos[path] = info
            let deps = Set(info.references.filter { $0 != path && paths.contains($0) })
            if deps.isEmpty {
                ready.append(info)
            } else {
                waitingOn[path] = deps
                for dep in deps { dependents[dep, default: []].append(path) }
            }
        }
        // Larger paths first keeps all jobs busy towards the end.
        ready.sort { $0.narSize < $1.narSize }
    }

    mutating func popReady() -> LocalPathInfo? { ready.popLast() }

    mutating func complete(_ path: String) {
        for dependent in dependents.removeValue(forKey: path) ?? [] {
            waitingOn[dependent]?.remove(path)
            if waitingOn[dependent]?.isEmpty == true, let info = infos[dependent] {
                waitingOn[dependent] = nil
                ready.append(info)
            }
        }
    }
}
