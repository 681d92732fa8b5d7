/// One step of the schema: applied once, in order, inside a transaction, and recorded in `capstan_migrations`.
struct Migration: Sendable {
    let version: Int
    let name: String
    /// Rebuilds a table others refer to (SQLite cannot drop a constraint otherwise): on SQLite it
    /// runs with foreign keys unenforced, so the drop cascades nowhere, and they are checked before commit.
    var rebuildsTables = false
    /// Statements for each backend; most are the same text, a few differ (e.g. column types).
    let statements: @Sendable (DatabaseBackend) -> [String]
}
