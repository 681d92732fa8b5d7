import Logging
import NIOCore
import SQLKit

/// An `SQLDatabase` that borrows a pooled connection for each statement (SQLiteKit has no pooled one of its own).
struct PooledSQLDatabase: SQLDatabase {
    typealias Checkout = @Sendable (Logger) async throws -> (any SQLDatabase, @Sendable () -> Void)

    let logger: Logger
    let dialect: any SQLDialect
    let eventLoopGroup: any EventLoopGroup
    let checkout: Checkout

    init(logger: Logger, dialect: any SQLDialect, eventLoopGroup: any EventLoopGroup, checkout: @escaping Checkout) {
        self.logger = logger
        self.dialect = dialect
        self.eventLoopGroup = eventLoopGroup
        self.checkout = checkout
    }

    var eventLoop: any EventLoop { eventLoopGroup.any() }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<
        Void
    > {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let (database, release) = try await checkout(logger)
        defer { release() }
        try await database.execute(sql: query, onRow)
    }
}
