import PostgresNIO
import SQLiteNIO

/// What went wrong in the database layer, naming the operation and the input it was given.
public enum StorageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `--database-url` could not be understood.
    case invalidDatabaseURL(String, reason: String)
    /// A name that must be unique is taken, e.g. `duplicate(what: "cache", name: "main")`.
    case duplicate(what: String, name: String)
    /// A row the operation needs does not exist, e.g. `notFound(what: "agent", key: "<id>")`.
    case notFound(what: String, key: String)
    /// A row holds a value this version cannot read (e.g. an unknown token kind).
    case invalidRow(table: String, key: String, reason: String)
    /// The database was migrated by a newer Capstan than this one.
    case schemaTooNew(found: Int, known: Int)
    /// A migration failed and was rolled back.
    case migrationFailed(version: Int, name: String, reason: String)
    /// A query failed; `operation` says what the store was doing and with which input.
    case query(operation: String, reason: String)

    public var description: String {
        switch self {
        case .invalidDatabaseURL(let url, let reason):
            return "database URL '\(Self.redacted(url))' is not valid: \(reason)"
        case .duplicate(let what, let name):
            return "a \(what) named '\(name)' already exists"
        case .notFound(let what, let key):
            return "\(what) '\(key)' does not exist"
        case .invalidRow(let table, let key, let reason):
            return "\(table) row \(key) cannot be read: \(reason)"
        case .schemaTooNew(let found, let known):
            return
                "the database schema is at version \(found) but this Capstan knows only up to \(known); upgrade Capstan"
        case .migrationFailed(let version, let name, let reason):
            return "database migration \(version) (\(name)) failed and was rolled back: \(reason)"
        case .query(let operation, let reason):
            return "\(operation) failed: \(reason)"
        }
    }

    /// Hides the password of a URL so that errors can be logged.
    static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let scheme = url.range(of: "://"),
            let colon = url[scheme.upperBound..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }

    /// A readable reason for a driver error; PostgreSQL's own errors hide the server's message by default.
    static func reason(for error: any Error) -> String {
        if let error = error as? StorageError { return error.description }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
                let detail = error.serverInfo?[.detail].map { ": \($0)" } ?? ""
                return message + detail + state
            }
            return String(reflecting: error)
        }
        if let error = error as? SQLiteError { return error.description }
        return String(describing: error)
    }

    /// True when the error is a violation of a UNIQUE or PRIMARY KEY constraint.
    static func isUniqueViolation(_ error: any Error) -> Bool {
        if let error = error as? PSQLError { return error.serverInfo?[.sqlState] == "23505" }
        if let error = error as? SQLiteError {
            return error.reason == .constraintUniqueFailed || error.reason == .constraintPrimaryKeyFailed
                || (error.reason == .constraint && error.message.contains("UNIQUE"))
        }
        return false
    }
}

/// Runs `body`, turning driver errors into `StorageError.query` that names the operation.
func describingFailure<R>(_ operation: @autoclosure () -> String, _ body: () async throws -> R) async throws -> R {
    do {
        return try await body()
    } catch let error as StorageError {
        throw error
    } catch {
        throw StorageError.query(operation: operation(), reason: StorageError.reason(for: error))
    }
}
