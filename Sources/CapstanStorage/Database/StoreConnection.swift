import SQLKit

/// One pooled database connection a store operation holds, handed to what follows the operation so
/// that it runs there instead of waiting for another connection behind everyone else's queries.
public struct StoreConnection: Sendable {
    let sql: any SQLDatabase
}
