import Foundation
import SQLKit

extension CapstanStore {
    /// Creates a workspace with a new UUID; a taken name throws `StorageError.duplicate`.
    public func createWorkspace(name: String) async throws -> WorkspaceRecord {
        let record = WorkspaceRecord(
            id: UUID().uuidString.lowercased(), name: name, createdAt: Date().roundedToStoredPrecision)
        let inserted = try await describingFailure("creating workspace '\(name)'") {
            try await database.transaction { db in
                try await db.raw(
                    """
                    INSERT INTO workspaces (id, name, created_at)
                    VALUES (\(bind: record.id), \(bind: record.name), \(bind: record.createdAt.unixMilliseconds))
                    ON CONFLICT (name) DO NOTHING
                    RETURNING id
                    """
                ).first() != nil
            }
        }
        guard inserted else { throw StorageError.duplicate(what: "workspace", name: name) }
        return record
    }

    public func workspace(named name: String) async throws -> WorkspaceRecord? {
        try await describingFailure("looking up workspace '\(name)'") {
            try await sql.raw("SELECT \(unsafeRaw: Self.workspaceColumns) FROM workspaces WHERE name = \(bind: name)")
                .first().map(WorkspaceRecord.init(row:))
        }
    }

    public func workspace(id: String) async throws -> WorkspaceRecord? {
        try await describingFailure("looking up workspace \(id)") {
            try await sql.raw("SELECT \(unsafeRaw: Self.workspaceColumns) FROM workspaces WHERE id = \(bind: id)")
                .first().map(WorkspaceRecord.init(row:))
        }
    }

    /// All workspaces, by name.
    public func workspaces() async throws -> [WorkspaceRecord] {
        try await describingFailure("listing workspaces") {
            try await sql.raw("SELECT \(unsafeRaw: Self.workspaceColumns) FROM workspaces ORDER BY name")
                .all().map(WorkspaceRecord.init(row:))
        }
    }

    static let workspaceColumns = "id, name, created_at"
}

extension WorkspaceRecord {
    init(row: any SQLRow) throws {
        self.init(
            id: try row.decode(column: "id", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            createdAt: Date(unixMilliseconds: try row.decode(column: "created_at", as: Int64.self)))
    }
}
