import CapstanModel
import CapstanStorage
import Foundation
import NixCore
import TestSupport
import Testing

/// Store paths are text in the database and `StorePath`s once read: a row whose path does not
/// parse is a corrupt database, reported with its table, row and the parser's reason.
@Suite("Store-path columns on SQLite and PostgreSQL")
struct StorePathColumnTests {
    /// Agent `web` of a new workspace, and the id of its deployment of `storePath`.
    static func deploy(
        _ storePath: StorePath, rollbackScript: [String: StorePath]? = nil, in store: CapstanStore
    ) async throws -> (agent: AgentRecord, id: String) {
        let workspace = try await Sample.workspace(store)
        let agent = Sample.agent(workspaceID: workspace.id, name: "web")
        try await store.insertAgent(agent)
        let batch = try await store.createDeployments(
            workspaceID: workspace.id, activationID: nil, createdBy: nil,
            requests: [DeploymentRequest(agentID: agent.id, storePath: storePath, rollbackScript: rollbackScript)],
            at: Date())
        return (agent, try #require(batch.created.first?.id))
    }

    @Test(arguments: DatabaseBackend.allCases)
    func storePathsAreReadAsTheyWereWritten(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let system = StorePath.named("system")
            let check = StorePath.named("check")
            let (_, id) = try await Self.deploy(system, rollbackScript: ["x86_64-linux": check], in: store)
            let read = try #require(try await store.deployment(id: id))
            #expect(read.storePath == system)
            #expect(read.rollbackScript == ["x86_64-linux": check])
            let text = try await store.database.sql.raw("SELECT store_path FROM deployments WHERE id = \(bind: id)")
                .first()?.decode(column: "store_path", as: String.self)
            #expect(text == system.path, "the column holds the full path as text")
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func aRowWhosePathIsNoStorePathIsACorruptDatabase(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let (agent, id) = try await Self.deploy(.named("system"), in: store)
            try await store.database.sql.raw(
                "UPDATE deployments SET store_path = '/etc/passwd' WHERE id = \(bind: id)"
            ).run()
            let error = await #expect(throws: StorageError.self) { try await store.deployment(id: id) }
            let message = error?.description ?? ""
            #expect(message.contains("deployments row \(id)"), "\(message)")
            #expect(message.contains("store_path: invalid store path '/etc/passwd'"), "\(message)")

            try await store.database.sql.raw(
                "UPDATE agents SET current_store_path = 'not a path' WHERE id = \(bind: agent.id)"
            ).run()
            let agentError = await #expect(throws: StorageError.self) { try await store.agent(id: agent.id) }
            #expect(
                agentError?.description.contains("current_store_path: invalid store path 'not a path'") == true,
                "\(agentError?.description ?? "")")
        }
    }
}
