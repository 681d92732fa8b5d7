import CapstanModel
import CapstanStorage
import Foundation
import HummingbirdWebSocket
import Logging

/// A cachix agent's control socket (`/ws`): `AgentRegistered`, then its pending deployment,
/// then whatever the hub sends it, each translated into the cachix protocol.
struct CachixAgentChannel: Sendable {
    let deploy: DeployService
    let hub: AgentHub

    func run(
        principal: Principal, hello: AgentHello, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
        logger: Logger
    ) async throws {
        let agent: AgentRecord
        do {
            agent = try await deploy.agentConnected(principal, hello: hello)
        } catch let error as ServiceError {
            try await outbound.close(.policyViolation, reason: String(error.message.prefix(120)))
            return
        }
        let agentID = agent.id
        let session = AgentHub.Session(
            id: UUID(), agentID: agentID, translate: { try CachixAgentFrames.frame(for: $0, agentID: agentID) },
            write: { try await outbound.write(.text($0)) })
        // Registered first: the agent drops a deployment that arrives before it.
        try await session.send(.welcome(agentID: agent.id, cache: try await deploy.cacheFor(agent)))
        await hub.attach(session)
        do {
            try await serve(agent, session: session, inbound: inbound, logger: logger)
        } catch {
            await hub.detach(session)
            try? await deploy.agentSeen(agent)
            throw error
        }
        await hub.detach(session)
        try? await deploy.agentSeen(agent)
        logger.info("cachix agent disconnected", metadata: ["agent": "\(agent.name)"])
    }

    private func serve(
        _ agent: AgentRecord, session: AgentHub.Session, inbound: WebSocketInboundStream, logger: Logger
    ) async throws {
        if let order = try await deploy.pendingOrder(for: agent) { try await session.send(.deploy(order)) }
        // No reconcile here: a cachix agent runs deployments in processes of their own that
        // outlive this socket, and it does not say which ones are still running.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // Keeps last-seen fresh so other replicas show the agent online.
                while true {
                    try await Task.sleep(for: .seconds(15))
                    try await deploy.agentSeen(agent)
                }
            }
            for try await message in inbound.messages(maxSize: 1 << 20) {
                if case .text(let text) = message {
                    logger.debug("cachix agent says", metadata: ["agent": "\(agent.name)", "message": "\(text.prefix(200))"])
                }
            }
            group.cancelAll()
        }
    }
}
