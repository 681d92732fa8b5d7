import CapstanModel
import Foundation
import SQLKit

extension CapstanStore {
    /// Lines per INSERT: 4 binds each keeps a statement far below SQLite's and PostgreSQL's bind limits.
    static let logInsertChunkSize = 500

    /// Appends lines to a deployment's log with consecutive sequence numbers after the current last one,
    /// in one transaction; returns the last sequence number (the current one when `lines` is empty).
    /// Throws `StorageError.notFound` for an unknown deployment.
    ///
    /// With `cap`, a log never grows past `cap.lines` lines: what does not fit is dropped and
    /// `cap.marker` is appended once in its place, so a reader sees that the log was cut.
    @discardableResult
    public func appendLogLines(deploymentID: String, lines: [LogLine], cap: LogCap? = nil) async throws -> Int {
        try await describingFailure("appending \(lines.count) log lines to deployment \(deploymentID)") {
            try await database.transaction { db in
                try await Self.appendLogLines(
                    on: db, backend: database.backend, deploymentID: deploymentID, lines: lines, cap: cap)
            }
        }
    }

    /// `appendLogLines` within a transaction the caller holds.
    static func appendLogLines(
        on db: any SQLDatabase, backend: DatabaseBackend, deploymentID: String, lines: [LogLine], cap: LogCap?
    ) async throws -> Int {
        let lockClause = backend == .postgres ? "FOR NO KEY UPDATE" : ""
        // Locking the deployment row serialises appenders on PostgreSQL; SQLite holds its write lock.
        let exists =
            try await db.raw(
                "SELECT id FROM deployments WHERE id = \(bind: deploymentID) \(unsafeRaw: lockClause)"
            ).first() != nil
        guard exists else { throw StorageError.notFound(what: "deployment", key: deploymentID) }
        let last =
            try await db.raw(
                """
                SELECT COALESCE(MAX(seq), 0) AS seq FROM deployment_logs
                WHERE deployment_id = \(bind: deploymentID)
                """
            ).first(decodingColumn: "seq", as: Int.self) ?? 0
        var lines = lines
        if let cap, last + lines.count > cap.lines {
            // Past the cap (marker already written) nothing more goes in.
            let room = max(0, cap.lines - last)
            let marker = last <= cap.lines ? [LogLine(time: Date(), line: cap.marker)] : []
            lines = Array(lines.prefix(room)) + marker
        }
        var seq = last
        var start = lines.startIndex
        while start < lines.endIndex {
            let end = min(start + logInsertChunkSize, lines.endIndex)
            var rows: [SQLQueryString] = []
            for line in lines[start..<end] {
                seq += 1
                let time = line.time.unixMilliseconds
                rows.append("(\(bind: deploymentID), \(bind: seq), \(bind: time), \(bind: line.line))")
            }
            try await db.raw(
                """
                INSERT INTO deployment_logs (deployment_id, seq, time, line)
                VALUES \(rows.joined(separator: ", "))
                """
            ).run()
            start = end
        }
        return seq
    }

    /// How many lines a deployment's log holds (its last sequence number).
    public func logLineCount(deploymentID: String) async throws -> Int {
        try await describingFailure("counting log lines of deployment \(deploymentID)") {
            try await sql.raw(
                "SELECT COALESCE(MAX(seq), 0) AS seq FROM deployment_logs WHERE deployment_id = \(bind: deploymentID)"
            ).first(decodingColumn: "seq", as: Int.self) ?? 0
        }
    }

    /// The log lines of a deployment with sequence numbers above `seq`, in order, at most `limit`:
    /// a follower passes the last number it has and gets only what is new.
    public func logLines(deploymentID: String, after seq: Int, limit: Int = 1000) async throws -> [StoredLogLine] {
        try await describingFailure("reading log lines of deployment \(deploymentID) after #\(seq)") {
            try await sql.raw(
                """
                SELECT seq, time, line FROM deployment_logs
                WHERE deployment_id = \(bind: deploymentID) AND seq > \(bind: seq)
                ORDER BY seq LIMIT \(literal: max(0, limit))
                """
            ).all().map { row in
                StoredLogLine(
                    seq: try row.decode(column: "seq", as: Int.self),
                    line: LogLine(
                        time: Date(unixMilliseconds: try row.decode(column: "time", as: Int64.self)),
                        line: try row.decode(column: "line", as: String.self)))
            }
        }
    }
}

/// A bound on how many lines one deployment's log keeps.
public struct LogCap: Sendable, Equatable {
    public var lines: Int
    /// The line that says the log was cut.
    public var marker: String

    public init(lines: Int, marker: String) {
        self.lines = lines
        self.marker = marker
    }
}
