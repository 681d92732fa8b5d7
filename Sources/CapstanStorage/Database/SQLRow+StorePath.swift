import NixCore
import SQLKit

extension SQLRow {
    /// A store-path column, parsed as it leaves the database: text that is not a store path is a
    /// corrupt row, reported with the table, the row and the parser's reason.
    func decodeStorePath(column: String, table: String, key: String) throws -> StorePath {
        try StorePath(column: column, text: decode(column: column, as: String.self), table: table, key: key)
    }

    func decodeStorePathIfPresent(column: String, table: String, key: String) throws -> StorePath? {
        try decode(column: column, as: String?.self).map {
            try StorePath(column: column, text: $0, table: table, key: key)
        }
    }
}

extension StorePath {
    fileprivate init(column: String, text: String, table: String, key: String) throws {
        do {
            try self.init(parsing: text)
        } catch {
            throw StorageError.invalidRow(table: table, key: key, reason: "\(column): \(error)")
        }
    }
}
