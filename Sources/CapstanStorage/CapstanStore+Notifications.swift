import Foundation
import Logging
import PostgresNIO
import SQLKit
import Synchronization

/// Events between server replicas that share a PostgreSQL database, over LISTEN/NOTIFY.
///
/// A notification is a hint, not a message queue: one sent while a listener reconnects is lost,
/// so listeners treat it as "re-read the database" and re-read after they reconnect anyway.
extension CapstanStore {
    /// PostgreSQL refuses payloads of 8000 bytes or more; the same limit holds on SQLite so code
    /// tested there does not fail on PostgreSQL.
    public static let maximumNotificationPayloadBytes = 7999

    /// Whether `notify` reaches other processes: true on PostgreSQL. A single SQLite server has no
    /// other replica to tell.
    public var supportsNotifications: Bool { database.backend == .postgres }

    /// Sends `payload` to every `listen(channel:)` of every store on this PostgreSQL database, this one
    /// included, when the current transaction commits (immediately: it runs outside one). A no-op on
    /// SQLite. `channel` is 1–63 letters, digits or underscores; `payload` must be under 8000 UTF-8 bytes.
    public func notify(channel: String, payload: String) async throws {
        try Self.checkChannelName(channel, operation: "notifying")
        let limit = Self.maximumNotificationPayloadBytes
        guard payload.utf8.count <= limit else {
            throw StorageError.query(
                operation: "notifying channel '\(channel)'",
                reason: "the payload is \(payload.utf8.count) bytes; PostgreSQL allows at most \(limit)")
        }
        guard database.backend == .postgres else { return }
        try await describingFailure("notifying channel '\(channel)' (\(payload.utf8.count) bytes)") {
            try await sql.raw("SELECT pg_notify(\(bind: channel), \(bind: payload))").run()
        }
    }

    /// Sends each payload as `notify(channel:payload:)` would, in order, with one statement however
    /// many there are, instead of one per payload: a deploy to many agents publishes an event for each. `on` is a
    /// connection to use instead of the pool.
    public func notify(channel: String, payloads: [String], on connection: StoreConnection? = nil) async throws {
        let sql = connection?.sql ?? sql
        try Self.checkChannelName(channel, operation: "notifying")
        let limit = Self.maximumNotificationPayloadBytes
        if let tooLong = payloads.first(where: { $0.utf8.count > limit }) {
            throw StorageError.query(
                operation: "notifying channel '\(channel)'",
                reason: "a payload is \(tooLong.utf8.count) bytes; PostgreSQL allows at most \(limit)")
        }
        guard database.backend == .postgres else { return }
        guard !payloads.isEmpty else { return }
        // One array parameter, whatever the number: an activation of 10,000 agents publishes 10,000
        // events. `pg_notify` is volatile, so it runs after the sort, in the payloads' order.
        try await describingFailure("notifying channel '\(channel)' (\(payloads.count) payloads)") {
            try await sql.raw(
                """
                SELECT pg_notify(\(bind: channel), v.payload)
                FROM unnest(\(bind: payloads)::text[]) WITH ORDINALITY AS v(payload, n) ORDER BY v.n
                """
            ).run()
        }
    }

    /// The payloads notified on `channel`, from when the listening connection is up until the consuming
    /// task is cancelled, the stream is dropped or the store shuts down.
    ///
    /// On PostgreSQL a dedicated connection (outside the pool) holds the LISTEN and is reopened, with a
    /// backoff of up to 5 s, whenever it drops; notifications sent meanwhile are lost. On SQLite the
    /// stream never yields. An invalid channel name ends the stream with an error.
    public func listen(channel: String) -> AsyncThrowingStream<String, any Error> {
        let (stream, continuation) = AsyncThrowingStream<String, any Error>.makeStream()
        do {
            try Self.checkChannelName(channel, operation: "listening on")
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        guard let configuration = database.postgresConfiguration else {
            // The registry holds the continuation: the stream stays open until its consumer goes or the store
            // shuts down.
            let registration = listeners.add { continuation.finish() }
            continuation.onTermination = { [listeners] _ in listeners.remove(registration) }
            return stream
        }
        let logger = logger
        let task = Task {
            await PostgresListener(
                channel: channel, configuration: configuration, logger: logger, continuation: continuation
            ).run()
        }
        let registration = listeners.add { task.cancel() }
        continuation.onTermination = { [listeners] _ in
            task.cancel()
            listeners.remove(registration)
        }
        return stream
    }

    /// LISTEN sends the name as a quoted identifier, so only plain identifiers are accepted.
    static func checkChannelName(_ channel: String, operation: String) throws {
        let valid =
            !channel.isEmpty && channel.utf8.count <= 63
            && channel.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
            }
        guard valid else {
            throw StorageError.query(
                operation: "\(operation) channel '\(channel)'",
                reason: "a channel name is 1 to 63 ASCII letters, digits or underscores")
        }
    }
}

/// The listeners a store started, so that `shutdown()` can end them.
final class ListenerRegistry: Sendable {
    private struct State {
        var nextID: UInt64 = 0
        var stops: [UInt64: @Sendable () -> Void] = [:]
        var isStopped = false
    }

    private let state = Mutex(State())

    /// Keeps `stop` for `stopAll()`; calls it at once when the store is already shut down.
    func add(_ stop: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, stopped) = state.withLock { state in
            state.nextID += 1
            if !state.isStopped { state.stops[state.nextID] = stop }
            return (state.nextID, state.isStopped)
        }
        if stopped { stop() }
        return id
    }

    func remove(_ id: UInt64) {
        _ = state.withLock { $0.stops.removeValue(forKey: id) }
    }

    /// Stops every listener; returns false when an earlier call already did.
    @discardableResult
    func stopAll() -> Bool {
        let (all, first) = state.withLock { state in
            defer {
                state.isStopped = true
                state.stops.removeAll()
            }
            return (Array(state.stops.values), !state.isStopped)
        }
        for stop in all { stop() }
        return first
    }
}

/// One LISTEN held on its own PostgreSQL connection, reopened whenever the connection drops.
struct PostgresListener: Sendable {
    static let initialBackoff: Duration = .milliseconds(100)
    static let maximumBackoff: Duration = .seconds(5)

    let channel: String
    let configuration: PostgresConnection.Configuration
    let logger: Logger
    let continuation: AsyncThrowingStream<String, any Error>.Continuation

    func run() async {
        var backoff = Self.initialBackoff
        while !Task.isCancelled {
            var connection: PostgresConnection?
            do {
                let opened = try await PostgresConnection.connect(
                    configuration: configuration, id: Int.random(in: 1...Int(Int32.max)), logger: logger)
                connection = opened
                try await opened.listen(on: channel) { notifications in
                    backoff = Self.initialBackoff
                    logger.debug("listening for notifications", metadata: ["channel": "\(channel)"])
                    for try await notification in notifications {
                        continuation.yield(notification.payload)
                    }
                }
                if !Task.isCancelled {
                    logger.warning(
                        "notification connection ended; reconnecting", metadata: ["channel": "\(channel)"])
                }
            } catch {
                if !Task.isCancelled {
                    logger.warning(
                        "notification connection failed; reconnecting",
                        metadata: [
                            "channel": "\(channel)", "error": "\(StorageError.reason(for: error))",
                            "retryIn": "\(backoff)",
                        ])
                }
            }
            try? await connection?.close()
            do {
                if !Task.isCancelled { try await Task.sleep(for: backoff) }
            } catch {
                break
            }
            backoff = min(backoff * 2, Self.maximumBackoff)
        }
        continuation.finish()
    }
}
