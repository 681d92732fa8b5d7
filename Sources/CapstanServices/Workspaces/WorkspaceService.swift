import CapstanModel
import CapstanStorage
import Foundation
import Logging

/// Workspaces keep teams apart: a token of one never sees another's agents, caches or deployments.
public struct WorkspaceService: Sendable {
    let store: CapstanStore
    let tokens: TokenService
    /// The workspace created on first start; its admins operate the server.
    let operatorWorkspace: String
    let logger: Logger

    public init(store: CapstanStore, tokens: TokenService, operatorWorkspace: String, logger: Logger) {
        self.store = store
        self.tokens = tokens
        self.operatorWorkspace = operatorWorkspace
        self.logger = logger
    }

    public func create(_ request: CreateWorkspaceRequest, by principal: Principal) async throws -> CreatedWorkspace {
        let home = try await store.workspace(id: principal.workspaceID)
        try AccessPolicy.require(
            .createWorkspace(homeWorkspace: home?.name ?? "", operatorWorkspace: operatorWorkspace), by: principal)
        do {
            try ResourceName.validate(request.name, what: "workspace")
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        guard try await store.workspace(named: request.name) == nil else {
            throw ServiceError.conflict("a workspace named '\(request.name)' already exists")
        }
        let workspace = try await store.createWorkspace(name: request.name)
        let token = try await tokens.issue(
            kind: .admin, workspaceID: workspace.id, cacheID: nil, agentID: nil, label: "initial admin token")
        logger.info("workspace created", metadata: ["workspace": "\(request.name)", "by": "\(principal.tokenID)"])
        return CreatedWorkspace(name: workspace.name, adminToken: token.token)
    }
}
