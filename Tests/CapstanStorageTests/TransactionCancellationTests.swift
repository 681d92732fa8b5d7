import CapstanStorage
import Foundation
import Testing

/// A task cancelled in the middle of a transaction (an agent's session ending while it writes) must
/// leave its pooled connection outside any transaction: on SQLite an abandoned one holds the write
/// lock, and every later writer waits on it.
@Suite("Transactions of cancelled tasks")
struct TransactionCancellationTests {
    @Test(.timeLimit(.minutes(10)), arguments: DatabaseBackend.allCases)
    func aCancelledTransactionIsRolledBackAndLaterWritersProceed(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let database = store.database
            try await database.transaction { db in try await db.raw("CREATE TABLE scratch (n INTEGER)").run() }
            for round in 0..<3 {
                let inside = AsyncStream.makeStream(of: Void.self)
                let writer = Task {
                    try await database.transaction { db in
                        try await db.raw("INSERT INTO scratch (n) VALUES (\(bind: round))").run()
                        inside.continuation.yield()
                        try await Task.sleep(for: .seconds(60))
                    }
                }
                for await _ in inside.stream { break }
                writer.cancel()
                await #expect(throws: CancellationError.self) { try await writer.value }
            }
            // Every pooled connection is free (an abandoned transaction makes these fail or wait on its lock
            // for good), and none of the cancelled rows stayed.
            try await Self.expectWritableWithOnlyNewRows(database)
        }
    }

    /// Six transactions in a row insert into `scratch` (one per pooled connection and more): they all
    /// commit, and the table then holds just their rows.
    static func expectWritableWithOnlyNewRows(_ database: CapstanDatabase) async throws {
        for n in 10..<16 {
            try await database.transaction { db in
                try await db.raw("INSERT INTO scratch (n) VALUES (\(bind: n))").run()
            }
        }
        let rows = try await database.sql.raw("SELECT n FROM scratch ORDER BY n").all(
            decodingColumn: "n", as: Int.self)
        #expect(rows == Array(10..<16))
    }
}
