import AsyncHTTPClient
import CapstanModel
import NIOCore

/// The uploads of one push, driven from one loop: it starts ready paths while fewer than `jobs`
/// NARs are being serialised and sent and fewer than 4×`jobs` uploads await their answer, and
/// moves the schedule on as bodies are sent, paths stored, refused for want of their references,
/// or retried. The first path that fails ends the push; the uploads still running are cancelled.
struct PushRun {
    private enum Outcome: Sendable {
        /// The body of attempt number `attempt` is all sent.
        case bodySent(Int, attempt: Int)
        case attempted(Int, UploadAttempt)
        case retryDue(Int)
    }

    let pusher: Pusher
    var schedule: UploadSchedule
    /// Seconds the server may hold an upload for its references; nil: paths go only after their references are stored.
    let referenceWait: Int?
    let onEvent: @Sendable (PushEvent) -> Void

    init(
        pusher: Pusher, schedule: UploadSchedule, referenceWait: Int?,
        onEvent: @escaping @Sendable (PushEvent) -> Void
    ) {
        self.pusher = pusher
        self.schedule = schedule
        self.referenceWait = referenceWait
        self.onEvent = onEvent
    }

    /// Uploads every path of the schedule; the paths stored, in order, and their stored bytes.
    mutating func upload() async throws -> (uploaded: [String], storedBytes: UInt64) {
        guard !schedule.isComplete else { return ([], 0) }
        let jobs = max(1, pusher.options.jobs)
        let maxAwaiting = referenceWait == nil ? jobs : 4 * jobs
        // Uploads awaiting their answer each hold a connection: the pool must not make them queue.
        let http = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: .init(
                connectionPool: .init(
                    idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 2 * maxAwaiting + jobs)))
        let client = CapstanAPIClient(baseURL: pusher.client.baseURL, token: pusher.client.token, http: http)
        do {
            let result = try await run(client: client, jobs: jobs, maxAwaiting: maxAwaiting)
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    private mutating func run(client: CapstanAPIClient, jobs: Int, maxAwaiting: Int) async throws -> (
        uploaded: [String], storedBytes: UInt64
    ) {
        let (outcomes, sink) = AsyncStream<Outcome>.makeStream()
        var uploaded: [String] = []
        var storedBytes: UInt64 = 0
        var sending = Set<Int>()
        var awaiting = 0
        var backingOff = 0
        var attempts: [Int: Int] = [:]
        let pusher = pusher
        let referenceWait = referenceWait
        let onEvent = onEvent
        try await withThrowingTaskGroup(of: Void.self) { group in
            func startReady() {
                while sending.count < jobs, let next = schedule.nextReady {
                    // A path sent before may go again whatever awaits: its dependents may be waiting for it.
                    let again = attempts[next] != nil
                    guard again || awaiting < maxAwaiting else { break }
                    _ = schedule.startNext()
                    attempts[next, default: 0] += 1
                    sending.insert(next)
                    awaiting += 1
                    let info = schedule.infos[next]
                    let number = attempts[next] ?? 1
                    if !again { onEvent(.started(path: info.path.path)) }
                    group.addTask {
                        let ended = await pusher.attempt(
                            info, referenceWait: referenceWait, using: client, onEvent: onEvent,
                            bodySent: { sink.yield(.bodySent(next, attempt: number)) })
                        sink.yield(.attempted(next, ended))
                    }
                }
            }
            startReady()
            for await outcome in outcomes {
                switch outcome {
                case .bodySent(let position, let attempt):
                    // A late end of an earlier attempt does not free the job of the current one.
                    if attempt == attempts[position] { sending.remove(position) }
                case .attempted(let position, let attempt):
                    sending.remove(position)
                    awaiting -= 1
                    let path = schedule.infos[position].path.path
                    switch attempt {
                    case .stored(let result):
                        uploaded.append(path)
                        storedBytes += result.fileSize
                        onEvent(.uploaded(path: path, narSize: result.narSize, fileSize: result.fileSize))
                        schedule.stored(position)
                    case .referencesMissing(let error):
                        guard referenceWait != nil else { throw failure(position, error) }
                        schedule.awaitStoredReferences(position)
                    case .transient(let error):
                        let attempt = attempts[position] ?? 1
                        guard attempt <= pusher.options.retries else { throw failure(position, error) }
                        onEvent(.retrying(path: path, attempt: attempt, error: error.description))
                        backingOff += 1
                        let delay = pusher.backoff(attempt: attempt)
                        group.addTask {
                            try await Task.sleep(for: delay)
                            sink.yield(.retryDue(position))
                        }
                    case .failed(let error):
                        throw failure(position, error)
                    }
                case .retryDue(let position):
                    backingOff -= 1
                    schedule.retry(position)
                }
                if schedule.isComplete { break }
                startReady()
                if awaiting == 0 && backingOff == 0 && !schedule.hasReady {
                    let stuck = schedule.infos.indices.filter { schedule.progress[$0] == .waiting }
                    throw PushError(
                        path: stuck.first.map { schedule.infos[$0].path.path } ?? "",
                        underlying: ServerOrderError(paths: stuck.count))
                }
            }
            group.cancelAll()
        }
        sink.finish()
        return (uploaded, storedBytes)
    }

    /// The push's error when a path fails: it names the path, and the paths left unsent because they refer to it.
    private func failure(_ position: Int, _ error: any Error) -> PushError {
        var failure = PushError(path: schedule.infos[position].path.path, underlying: error)
        failure.dependents = schedule.unstoredDependents(of: position)
        return failure
    }
}

/// Missing paths that wait for each other: none can go first (Nix makes no such closures).
private struct ServerOrderError: Error, CustomStringConvertible {
    let paths: Int
    var description: String { "\(paths) paths to upload reference each other in a cycle; none can go first" }
}
