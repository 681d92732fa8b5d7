@preconcurrency import AsyncKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLKit
import SQLiteKit

/// The database behind Capstan: a pooled SQLite file or PostgreSQL, reached through SQLKit.
///
/// Single statements may use `sql`; anything that writes goes through `transaction(_:)`, which on
/// SQLite also queues writers of this process so that only one of them waits on the file lock.
public final class CapstanDatabase: @unchecked Sendable {
    // @unchecked: the AsyncKit pools guard their state with a lock but are not marked Sendable.

    public let backend: DatabaseBackend
    /// Statements sent here run on any pooled connection, outside any transaction.
    public let sql: any SQLDatabase
    public let logger: Logger
    /// How many connections the pool holds at most: what work that may queue by the thousand (a
    /// fleet's reports) is allowed only part of.
    public let pooledConnections: Int
    /// How to open a connection outside the pool, e.g. the one a `LISTEN` holds; nil on SQLite.
    let postgresConfiguration: PostgresConnection.Configuration?
    private let pool: Pool

    private enum Pool {
        /// The gate queues this process's writers of the file; PostgreSQL runs transactions side by side.
        case sqlite(EventLoopGroupConnectionPool<SQLiteConnectionSetup>, WriteGate)
        case postgres(EventLoopGroupConnectionPool<PostgresConnectionSource>)
    }

    /// The SQL dialect of the backend, for code that builds statements with SQLKit.
    public var dialect: any SQLDialect { sql.dialect }

    /// Opens the database a URL names.
    ///
    /// - nil, empty, `sqlite` or `sqlite:` → `<dataDirectory>/capstan.sqlite`; `sqlite:PATH` → that file.
    /// - `postgres://user:password@host:port/database` (or `postgresql://`) → PostgreSQL;
    ///   add `?sslmode=disable` for servers without TLS.
    public static func open(url: String?, dataDirectory: String, logger: Logger) async throws -> CapstanDatabase {
        let group = MultiThreadedEventLoopGroup.singleton
        let trimmed = url?.trimmingCharacters(in: .whitespaces) ?? ""
        if trimmed.isEmpty || trimmed == "sqlite" || trimmed.hasPrefix("sqlite:") {
            var path = String(trimmed.dropFirst("sqlite".count))
            if path.hasPrefix(":") { path.removeFirst() }
            if path.hasPrefix("//") { path.removeFirst(2) }
            if path.isEmpty { path = (dataDirectory as NSString).appendingPathComponent("capstan.sqlite") }
            do {
                try FileManager.default.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            } catch {
                throw StorageError.invalidDatabaseURL(
                    trimmed.isEmpty ? path : trimmed,
                    reason: "cannot create the directory of \(path): \(error.localizedDescription)")
            }
            let pool = EventLoopGroupConnectionPool(
                source: SQLiteConnectionSetup(path: path, busyTimeoutMilliseconds: 10_000),
                maxConnectionsPerEventLoop: Self.sqliteConnectionsPerLoop, logger: logger, on: group)
            let sql = PooledSQLDatabase(logger: logger, dialect: SQLiteDialect(), eventLoopGroup: group) { logger in
                let connection = try await pool.requestConnection(logger: logger).get()
                return (connection.sqlQuiet(), { pool.releaseConnection(connection, logger: logger) })
            }
            logger.info("opened SQLite database", metadata: ["path": "\(path)"])
            let canonical = (path as NSString).standardizingPath
            return CapstanDatabase(
                backend: .sqlite, sql: sql, pool: .sqlite(pool, await WriteGate.forFile(canonical)),
                pooledConnections: Self.sqliteConnectionsPerLoop * Self.loops(of: group),
                postgresConfiguration: nil, logger: logger)
        }
        if trimmed.hasPrefix("postgres://") || trimmed.hasPrefix("postgresql://") {
            let configuration: SQLPostgresConfiguration
            do {
                configuration = try SQLPostgresConfiguration(url: trimmed)
            } catch {
                throw StorageError.invalidDatabaseURL(
                    trimmed,
                    reason: "expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|require]")
            }
            let pool = EventLoopGroupConnectionPool(
                source: PostgresConnectionSource(sqlConfiguration: configuration),
                maxConnectionsPerEventLoop: Self.postgresConnectionsPerLoop, logger: logger, on: group)
            let sql = pool.database(logger: logger).sql(queryLogLevel: Self.queryLogLevel)
            logger.info(
                "using PostgreSQL database", metadata: ["url": "\(StorageError.redacted(trimmed))"])
            return CapstanDatabase(
                backend: .postgres, sql: sql, pool: .postgres(pool),
                pooledConnections: Self.postgresConnectionsPerLoop * Self.loops(of: group),
                postgresConfiguration: configuration.coreConfiguration, logger: logger)
        }
        throw StorageError.invalidDatabaseURL(
            trimmed, reason: "use sqlite:PATH (or nothing, for the data directory) or postgres://USER@HOST/DATABASE")
    }

    private init(
        backend: DatabaseBackend, sql: any SQLDatabase, pool: Pool, pooledConnections: Int,
        postgresConfiguration: PostgresConnection.Configuration?, logger: Logger
    ) {
        self.backend = backend
        self.pooledConnections = pooledConnections
        self.sql = sql
        self.pool = pool
        self.postgresConfiguration = postgresConfiguration
        self.logger = logger
    }

    /// Runs `body` on one connection held for its duration.
    public func withConnection<R: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> R
    ) async throws -> R {
        switch pool {
        case .sqlite(let pool, _):
            let connection = try await pool.requestConnection(logger: logger).get()
            defer { pool.releaseConnection(connection, logger: logger) }
            return try await body(connection.sqlQuiet())
        case .postgres(let pool):
            let connection = try await pool.requestConnection(logger: logger).get()
            defer { pool.releaseConnection(connection, logger: logger) }
            return try await body(connection.sql(queryLogLevel: Self.queryLogLevel))
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    ///
    /// On SQLite the transaction starts with `BEGIN IMMEDIATE`, so it holds the write lock from its
    /// first statement and never fails half-way on a lock upgrade.
    public func transaction<R: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> R
    ) async throws -> R {
        switch pool {
        case .sqlite(_, let writeGate):
            await writeGate.acquire()
            do {
                let result = try await withConnection { try await Self.run(body, on: $0, begin: "BEGIN IMMEDIATE") }
                await writeGate.release()
                return result
            } catch {
                await writeGate.release()
                throw error
            }
        case .postgres:
            return try await withConnection { try await Self.run(body, on: $0, begin: "BEGIN") }
        }
    }

    /// `transaction(body)`, then `after` on the same connection once the commit is done: what follows a
    /// write (a notification, the reads that decide what comes next) without waiting for another pooled
    /// connection behind everyone else's. On SQLite the write lock is already released when `after` runs.
    /// `after` cannot fail: the transaction is committed by then, whatever it reads.
    public func transaction<R: Sendable, A: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> R,
        then after: @Sendable (any SQLDatabase, R) async -> A
    ) async throws -> (R, A) {
        switch pool {
        case .sqlite(let pool, let writeGate):
            await writeGate.acquire()
            let connection: SQLiteConnection
            do {
                connection = try await pool.requestConnection(logger: logger).get()
            } catch {
                await writeGate.release()
                throw error
            }
            defer { pool.releaseConnection(connection, logger: logger) }
            let database = connection.sqlQuiet()
            let result: R
            do {
                result = try await Self.run(body, on: database, begin: "BEGIN IMMEDIATE")
            } catch {
                await writeGate.release()
                throw error
            }
            await writeGate.release()
            return (result, await after(database, result))
        case .postgres:
            return try await withConnection { connection in
                let result = try await Self.run(body, on: connection, begin: "BEGIN")
                return (result, await after(connection, result))
            }
        }
    }

    /// A transaction that may drop and recreate tables others refer to. On SQLite, foreign keys are
    /// unenforced meanwhile (a pragma that only takes effect outside a transaction, on this one
    /// connection) and every reference is checked before the commit; PostgreSQL needs nothing special.
    func transactionRebuildingTables<R: Sendable>(
        _ body: @escaping @Sendable (any SQLDatabase) async throws -> R
    ) async throws -> R {
        guard case .sqlite(_, let writeGate) = pool else { return try await transaction(body) }
        await writeGate.acquire()
        do {
            let result = try await withConnection { connection in
                try await connection.raw("PRAGMA foreign_keys = OFF").run()
                do {
                    let result = try await Self.run(
                        { db in
                            let result = try await body(db)
                            let broken = try await db.raw("PRAGMA foreign_key_check").all()
                            guard broken.isEmpty else {
                                throw StorageError.query(
                                    operation: "rebuilding tables",
                                    reason: "\(broken.count) rows would refer to rows that no longer exist")
                            }
                            return result
                        }, on: connection, begin: "BEGIN IMMEDIATE")
                    try await connection.raw("PRAGMA foreign_keys = ON").run()
                    return result
                } catch {
                    try? await connection.raw("PRAGMA foreign_keys = ON").run()
                    throw error
                }
            }
            await writeGate.release()
            return result
        } catch {
            await writeGate.release()
            throw error
        }
    }

    private static func run<R: Sendable>(
        _ body: @Sendable (any SQLDatabase) async throws -> R, on database: any SQLDatabase, begin: String
    ) async throws -> R {
        try await database.raw("\(unsafeRaw: begin)").run()
        do {
            let result = try await body(database)
            try await uncancellable("COMMIT", on: database)
            return result
        } catch {
            do {
                try await uncancellable("ROLLBACK", on: database)
            } catch let rollbackError {
                database.logger.warning(
                    "rollback failed", metadata: ["error": "\(StorageError.reason(for: rollbackError))"])
            }
            throw error
        }
    }

    /// Runs the statement that ends a transaction to completion even when the task that asked is
    /// cancelled (an agent's session ending mid-write, say): otherwise the pooled connection stays
    /// inside the transaction, and on SQLite every later writer waits on its lock.
    private static func uncancellable(_ statement: String, on database: any SQLDatabase) async throws {
        try await Task { try await database.raw("\(unsafeRaw: statement)").run() }.value
    }

    /// Answers when the database accepts a query, for readiness checks.
    public func ping() async throws {
        try await describingFailure("pinging the \(backend.rawValue) database") {
            _ = try await sql.raw("SELECT 1 AS ok").first()
        }
    }

    /// Closes every pooled connection; the database cannot be used afterwards.
    public func shutdown() async throws {
        switch pool {
        case .sqlite(let pool, _): try await pool.shutdownAsync()
        case .postgres(let pool): try await pool.shutdownAsync()
        }
    }
}

extension CapstanDatabase {
    static let sqliteConnectionsPerLoop = 2
    static let postgresConnectionsPerLoop = 4

    static func loops(of group: any EventLoopGroup) -> Int {
        var count = 0
        for _ in group.makeIterator() { count += 1 }
        return count
    }

    /// Every statement is logged at this level: trace, so that a server at debug level (request
    /// logging) does not also format and write a log line per query on every request.
    static let queryLogLevel: Logger.Level = .trace
}

extension SQLiteConnection {
    fileprivate func sqlQuiet() -> any SQLDatabase {
        sql(encoder: .init(), decoder: .init(), queryLogLevel: CapstanDatabase.queryLogLevel)
    }
}
