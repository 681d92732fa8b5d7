@preconcurrency import AsyncKit
import Logging
import NIOCore
import NIOPosix
import SQLiteKit

/// Opens SQLite connections configured the way Capstan relies on: WAL (readers never wait for the
/// writer), a bounded busy wait instead of SQLiteNIO's unbounded one, and foreign keys enforced.
struct SQLiteConnectionSetup: ConnectionPoolSource, Sendable {
    let path: String
    let busyTimeoutMilliseconds: Int

    func makeConnection(logger: Logger, on eventLoop: any EventLoop) -> EventLoopFuture<SQLiteConnection> {
        let pragmas = [
            "PRAGMA busy_timeout = \(busyTimeoutMilliseconds)",
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA foreign_keys = ON",
        ]
        return SQLiteConnection.open(
            storage: .file(path: path), threadPool: .singleton, logger: logger, on: eventLoop
        ).flatMap { connection in
            var chain = eventLoop.makeSucceededVoidFuture()
            for pragma in pragmas {
                chain = chain.flatMap { connection.query(pragma).map { _ in () } }
            }
            return chain.map { connection }.flatMapError { error in
                connection.close().flatMapThrowing { throw error }
            }
        }
    }
}
