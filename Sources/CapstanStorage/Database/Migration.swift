/// One step of the schema: applied once, in order, inside a transaction, and recorded in `capstan_migrations`.
struct Migration: Sendable {
    let version: Int
    let name: String
    /// Statements for each backend; most are the same text, a few differ (e.g. column types).
    let statements: @Sendable (DatabaseBackend) -> [String]
}
