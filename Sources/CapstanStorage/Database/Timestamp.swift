import Foundation

/// Timestamps are stored as BIGINT milliseconds since 1970: the same type and precision on SQLite and PostgreSQL.
extension Date {
    public var unixMilliseconds: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }

    init(unixMilliseconds: Int64) {
        self.init(timeIntervalSince1970: Double(unixMilliseconds) / 1000)
    }

    /// This date at the precision the database keeps, so a stored record compares equal to the one read back.
    public var roundedToStoredPrecision: Date { Date(unixMilliseconds: unixMilliseconds) }
}
