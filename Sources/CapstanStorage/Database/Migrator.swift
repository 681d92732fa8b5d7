import Foundation
import Logging
import SQLKit

/// Brings the schema up to date. Safe when several servers start at once: on PostgreSQL every step
/// takes a transaction-scoped advisory lock, on SQLite `BEGIN IMMEDIATE` holds the file's write lock.
struct Migrator: Sendable {
    /// Arbitrary constant naming Capstan's migration lock among other advisory locks of the database.
    static let advisoryLockKey: Int64 = 0x4361_7073_7461_6e4d

    let database: CapstanDatabase
    let migrations: [Migration]

    /// Applies the migrations not yet recorded; returns the versions applied by this call.
    @discardableResult
    func migrate() async throws -> [Int] {
        let logger = database.logger
        let backend = database.backend
        try await describingFailure("creating the capstan_migrations table") {
            try await database.transaction { db in
                try await Self.lock(db, backend: backend)
                try await db.raw(
                    """
                    CREATE TABLE IF NOT EXISTS capstan_migrations (
                        version INTEGER PRIMARY KEY,
                        name TEXT NOT NULL,
                        applied_at BIGINT NOT NULL
                    )
                    """
                ).run()
            }
        }
        let known = migrations.map(\.version).max() ?? 0
        var applied: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            let didApply: Bool
            do {
                let apply: @Sendable (any SQLDatabase) async throws -> Bool = { db in
                    try await Self.lock(db, backend: backend)
                    let newest =
                        try await db.raw("SELECT MAX(version) AS version FROM capstan_migrations")
                        .first(decodingColumn: "version", as: Int?.self) ?? nil
                    if let newest, newest > known { throw StorageError.schemaTooNew(found: newest, known: known) }
                    let done = try await db.raw(
                        "SELECT version FROM capstan_migrations WHERE version = \(bind: migration.version)"
                    ).first()
                    if done != nil { return false }
                    for statement in migration.statements(backend) {
                        try await db.raw("\(unsafeRaw: statement)").run()
                    }
                    try await db.raw(
                        """
                        INSERT INTO capstan_migrations (version, name, applied_at)
                        VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: Date().unixMilliseconds))
                        """
                    ).run()
                    return true
                }
                didApply =
                    migration.rebuildsTables
                    ? try await database.transactionRebuildingTables(apply) : try await database.transaction(apply)
            } catch let error as StorageError {
                if case .schemaTooNew = error { throw error }
                throw StorageError.migrationFailed(
                    version: migration.version, name: migration.name, reason: error.description)
            } catch {
                throw StorageError.migrationFailed(
                    version: migration.version, name: migration.name, reason: StorageError.reason(for: error))
            }
            if didApply {
                applied.append(migration.version)
                logger.info(
                    "applied database migration",
                    metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            }
        }
        return applied
    }

    private static func lock(_ db: any SQLDatabase, backend: DatabaseBackend) async throws {
        guard backend == .postgres else { return }
        try await db.raw("SELECT pg_advisory_xact_lock(\(literal: advisoryLockKey))").run()
    }
}
