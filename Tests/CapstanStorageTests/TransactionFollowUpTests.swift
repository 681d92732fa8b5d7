import CapstanStorage
import Foundation
import Synchronization
import Testing

/// `transaction(_:then:)`: what follows a write runs on the connection that made it, after the commit,
/// without holding SQLite's write lock, and not at all when the write fails.
@Suite("Work that follows a transaction on its connection")
struct TransactionFollowUpTests {
    @Test(.timeLimit(.minutes(5)), arguments: DatabaseBackend.allCases)
    func theFollowUpRunsOnTheSameConnectionAfterTheCommit(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let database = store.database
            try await database.transaction { db in try await db.raw("CREATE TABLE scratch (n INTEGER)").run() }
            let (inserted, seen) = try await database.transaction(
                { db in
                    try await db.raw("INSERT INTO scratch (n) VALUES (1)").run()
                    // A temporary table exists only on the connection that made it.
                    try await db.raw("CREATE TEMPORARY TABLE marker (n INTEGER)").run()
                    return 1
                },
                then: { db, inserted in
                    do {
                        let onThisConnection = try await db.raw("SELECT COUNT(*) AS n FROM marker").first(
                            decodingColumn: "n", as: Int.self)
                        try await db.raw("DROP TABLE marker").run()
                        // Committed: a pooled connection of its own sees the row, and (SQLite) the write
                        // lock is free for another writer.
                        try await database.transaction { other in
                            try await other.raw("INSERT INTO scratch (n) VALUES (2)").run()
                        }
                        let committed = try await database.sql.raw("SELECT COUNT(*) AS n FROM scratch").first(
                            decodingColumn: "n", as: Int.self)
                        return (onThisConnection, committed)
                    } catch {
                        Issue.record("the follow-up failed: \(error)")
                        return (nil, nil)
                    }
                })
            #expect(inserted == 1)
            #expect(seen.0 == 0)
            #expect(seen.1 == 2)
        }
    }

    @Test(.timeLimit(.minutes(5)), arguments: DatabaseBackend.allCases)
    func aFailedTransactionHasNoFollowUpAndLeavesTheDatabaseWritable(backend: DatabaseBackend) async throws {
        struct Refused: Error {}
        try await StoreFixture.withStore(backend) { store in
            let database = store.database
            try await database.transaction { db in try await db.raw("CREATE TABLE scratch (n INTEGER)").run() }
            let followedUp = Counter()
            await #expect(throws: Refused.self) {
                _ = try await database.transaction(
                    { db -> Int in
                        try await db.raw("INSERT INTO scratch (n) VALUES (1)").run()
                        throw Refused()
                    },
                    then: { _, _ in followedUp.add() })
            }
            #expect(followedUp.value == 0)
            // Rolled back, and every pooled connection and the write lock are free again.
            try await TransactionCancellationTests.expectWritableWithOnlyNewRows(database)
        }
    }

    final class Counter: Sendable {
        private let count = Mutex(0)
        func add() { count.withLock { $0 += 1 } }
        var value: Int { count.withLock { $0 } }
    }
}
