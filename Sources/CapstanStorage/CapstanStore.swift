import Foundation
import Logging
import SQLKit

/// Everything Capstan keeps: the database (workspaces, tokens, caches, paths) and the blob store of NARs.
///
/// One instance per server process, shared by all requests; every operation is a short query or
/// transaction, safe to call concurrently.
public final class CapstanStore: Sendable {
    public let database: CapstanDatabase
    /// NARs and uploads in flight: files under `<dataDirectory>/blobs` unless another store is given.
    public let blobs: any BlobStore
    let logger: Logger
    /// The `listen(channel:)` streams this store serves, ended by `shutdown()`.
    let listeners = ListenerRegistry()

    init(database: CapstanDatabase, blobs: any BlobStore, logger: Logger) {
        self.database = database
        self.blobs = blobs
        self.logger = logger
    }

    /// Opens the database named by `databaseURL` (see `CapstanDatabase.open`) and the blob store
    /// under `dataDirectory`. Call `migrate()` before the first query.
    public static func open(
        databaseURL: String?, dataDirectory: String, blobs: (any BlobStore)? = nil, logger: Logger
    ) async throws -> CapstanStore {
        let blobs = try blobs ?? FileBlobStore(root: (dataDirectory as NSString).appendingPathComponent("blobs"))
        let database = try await CapstanDatabase.open(url: databaseURL, dataDirectory: dataDirectory, logger: logger)
        return CapstanStore(database: database, blobs: blobs, logger: logger)
    }

    /// Brings the schema up to date; returns the migration versions this call applied.
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await Migrator(database: database, migrations: Migrations.all).migrate()
    }

    /// The migration versions recorded in the database, in order.
    public func appliedMigrations() async throws -> [Int] {
        try await describingFailure("reading capstan_migrations") {
            try await database.sql.raw("SELECT version FROM capstan_migrations ORDER BY version")
                .all(decodingColumn: "version", as: Int.self)
        }
    }

    /// Succeeds when the database answers a query: the server's readiness check.
    public func ping() async throws {
        try await database.ping()
    }

    /// Ends the `listen(channel:)` streams and closes the database connections. Later calls do nothing,
    /// so a server may call it from both its shutdown path and its error path.
    public func shutdown() async throws {
        guard listeners.stopAll() else { return }
        try await database.shutdown()
    }

    var sql: any SQLDatabase { database.sql }
}
