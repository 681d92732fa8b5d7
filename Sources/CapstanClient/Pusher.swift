import AsyncHTTPClient
import CapstanModel
import Compression
import Dispatch
import Foundation
import NIOCore
import NixCore
import Synchronization

public struct PushOptions: Sendable {
    /// NARs serialised and compressed at once; 4× as many uploads may await their answer.
    public var jobs: Int = 4
    /// Further attempts after a transient failure (5xx, 429, network).
    public var retries: Int = 3
    public var zstdLevel: Int32 = 3
    /// First backoff delay; doubled on each retry, with jitter.
    public var retryDelay: Duration = .seconds(1)
    /// How long the server may hold an upload until its references are stored (the server's own bound applies too).
    public var referenceWaitSeconds: Int = 300

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
    /// Paths not uploaded because they refer to `path`.
    public var dependents: [String] = []

    public init(path: String, underlying: any Error) {
        self.path = path
        self.underlying = underlying
    }

    public var description: String {
        let unsent =
            dependents.isEmpty
            ? ""
            : "; not uploaded either, as they refer to it: " + dependents.prefix(5).joined(separator: ", ")
                + (dependents.count > 5 ? " and \(dependents.count - 5) more" : "")
        return "pushing \(path): \(underlying)\(unsent)"
    }
}

/// Pushes closures: asks the server which paths it lacks, then uploads those concurrently so that
/// the cache never shows a path without its closure. A server that waits for references gets each
/// path as soon as every missing path it references has started; any other, only after they are stored.
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
        var serverWait: Int? = Int.max
        let hashes = closure.map(\.path.hashPart)
        for start in stride(from: 0, to: hashes.count, by: 1000) {
            let chunk = Array(hashes[start..<min(start + 1000, hashes.count)])
            let answer = try await client.missingPaths(cache: cache, hashes: chunk)
            missingHashes.formUnion(answer.missing)
            serverWait = answer.maxReferenceWait.flatMap { wait in serverWait.map { min($0, wait) } }
        }
        let missing = closure.filter { missingHashes.contains($0.path.hashPart) }
        let narBytes = missing.reduce(UInt64(0)) { $0 + $1.narSize }
        onEvent(.planned(closure: closure.count, missing: missing.count, narBytes: narBytes))
        // Only a server that says how long it waits for references may get a path before them.
        let referenceWait = serverWait.map { min($0, options.referenceWaitSeconds) }.flatMap { $0 > 0 ? $0 : nil }
        var run = PushRun(
            pusher: self, schedule: UploadSchedule(missing, overlapping: referenceWait != nil),
            referenceWait: referenceWait, onEvent: onEvent)
        let (uploaded, storedBytes) = try await run.upload()
        let elapsed = ContinuousClock.now - started
        return PushSummary(
            cache: cache, closure: closure.count, alreadyPresent: closure.count - missing.count, uploaded: uploaded,
            narBytes: narBytes, storedBytes: storedBytes,
            seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }

    /// One attempt at one path; `bodySent` is called once its body is all sent (whatever the answer).
    func attempt(
        _ info: LocalPathInfo, referenceWait: Int?, using client: CapstanAPIClient,
        onEvent: @escaping @Sendable (PushEvent) -> Void, bodySent: @escaping @Sendable () -> Void
    ) async -> UploadAttempt {
        let path = info.path.path
        let uploadInfo = PathUploadInfo(
            storePath: info.path, narHash: info.narHash, narSize: info.narSize, references: info.references,
            deriver: info.deriver, sigs: info.signatures ?? [], ca: info.ca)
        let channel = ChunkChannel(onEnd: bodySent)
        let sent = Atomic<UInt64>(0)
        startProducer(path: path, channel: channel) { bytes in
            sent.add(bytes, ordering: .relaxed)
            onEvent(.progress(bytes: bytes))
        }
        defer { channel.cancel() }
        do {
            return .stored(
                try await client.uploadPath(
                    cache: cache, info: uploadInfo, contentEncoding: "zstd", body: .stream(channel, length: .unknown),
                    awaitReferences: referenceWait))
        } catch let error as ClientError where error.isTransient || error.status == 424 {
            // Sent again later: what this attempt read is counted again then.
            onEvent(.progress(bytes: 0 &- sent.load(ordering: .relaxed)))
            return error.status == 424 ? .referencesMissing(error) : .transient(error)
        } catch {
            return .failed(error)
        }
    }

    /// The delay before retry `attempt` (from 1): doubled each time, with jitter.
    func backoff(attempt: Int) -> Duration {
        let base = options.retryDelay * (1 << (attempt - 1))
        return base + base * Double.random(in: 0..<0.5)
    }

    /// Serialises and compresses the NAR on a thread of its own; the channel's back-pressure
    /// keeps only a few chunks in memory whatever the path's size. A thread, not a dispatch queue:
    /// the producer blocks while the upload is behind, and on Linux the global queue runs only about
    /// as many blocks at once as there are cores, so blocked producers would hold up the others.
    private func startProducer(path: String, channel: ChunkChannel, onBytes: @escaping @Sendable (UInt64) -> Void) {
        let level = options.zstdLevel
        Thread.detachNewThread {
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

/// How one attempt to upload a path ended.
enum UploadAttempt: Sendable {
    case stored(PathUploadResult)
    /// The server would not store it before its references (424): sent again once they are stored.
    case referencesMissing(ClientError)
    case transient(ClientError)
    case failed(any Error)
}
