import CapstanModel
import CapstanStorage
import Foundation
import HummingbirdWebSocket
import Logging
import NIOCore

/// One agent's WebSocket: hello, welcome, the pending deployment, then events both ways.
/// Pings are automatic (see `CapstanServer`), so a dead agent is noticed within a minute.
struct AgentChannel: Sendable {
    let deploy: DeployService
    let hub: AgentHub
    /// How long the server waits before failing deployments a reconnected agent did not report.
    let reconcileDelay: Duration

    func run(
        principal: Principal, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
        let encoder = JSONEncoder.capstanAgent
        let decoder = JSONDecoder.capstanAgent
        let send: @Sendable (ServerMessage) async throws -> Void = { message in
            try await outbound.write(.text(String(decoding: try encoder.encode(message), as: UTF8.self)))
        }
        guard case .text(let first)? = try await messages.next(),
            case .hello(let hello) = try? decoder.decode(AgentMessage.self, from: Data(first.utf8))
        else {
            try await outbound.close(.protocolError, reason: "the first message must be a hello")
            return
        }
        let agent: AgentRecord
        do {
            agent = try await deploy.agentConnected(principal, hello: hello)
        } catch let error as ServiceError {
            try await outbound.close(.policyViolation, reason: String(error.message.prefix(120)))
            return
        }
        try await send(.welcome(agentID: agent.id, cache: try await deploy.cacheFor(agent)))
        let session = AgentHub.Session(id: UUID(), agentID: agent.id, send: send)
        await hub.attach(session)
        do {
            try await serve(agent: agent, hello: hello, messages: &messages, send: send, logger: logger)
        } catch {
            await hub.detach(session)
            try? await deploy.agentSeen(agent)
            throw error
        }
        await hub.detach(session)
        try? await deploy.agentSeen(agent)
        logger.info("agent disconnected", metadata: ["agent": "\(agent.name)"])
    }

    private func serve(
        agent: AgentRecord, hello: AgentHello, messages: inout WebSocketInboundMessageStream.AsyncIterator,
        send: @escaping @Sendable (ServerMessage) async throws -> Void, logger: Logger
    ) async throws {
        let decoder = JSONDecoder.capstanAgent
        if let order = try await deploy.pendingOrder(for: agent) { try await send(.deploy(order)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await Task.sleep(for: reconcileDelay)
                try await deploy.reconcile(agent, running: hello.runningDeployment)
            }
            group.addTask {
                // Keeps last-seen fresh so other replicas show the agent online.
                while true {
                    try await Task.sleep(for: .seconds(15))
                    try await deploy.agentSeen(agent)
                }
            }
            while let message = try await messages.next() {
                guard case .text(let text) = message,
                    let decoded = try? decoder.decode(AgentMessage.self, from: Data(text.utf8))
                else {
                    logger.warning("ignoring an unreadable message from agent", metadata: ["agent": "\(agent.name)"])
                    continue
                }
                do {
                    try await handle(decoded, from: agent, send: send)
                } catch let error as ServiceError {
                    logger.warning("agent message refused", metadata: ["agent": "\(agent.name)", "error": "\(error)"])
                }
            }
            group.cancelAll()
        }
    }

    private func handle(
        _ message: AgentMessage, from agent: AgentRecord, send: @Sendable (ServerMessage) async throws -> Void
    ) async throws {
        switch message {
        case .hello:
            break
        case .started(let id, let closureSize):
            if try await !deploy.agentStarted(agent, deploymentID: id, closureSize: closureSize) {
                try await send(.cancel(id: id))
            }
        case .log(let id, let lines):
            try await deploy.agentLogged(agent, deploymentID: id, lines: lines)
        case .finished(let outcome):
            try await deploy.agentFinished(agent, outcome: outcome)
            // The next deployment may already be waiting.
            try await deploy.dispatchPending(to: agent)
        }
    }
}

/// Sends agents the work that concerns them, whichever replica it was created on.
struct AgentDispatcher: Sendable {
    let deploy: DeployService
    let hub: AgentHub
    let events: EventBus
    let logger: Logger

    func run() async {
        for await batch in events.batches() {
            await dispatch(batch)
        }
    }

    /// Runs of creations are looked up and sent together (a deploy to many agents publishes one per
    /// agent); a cancellation is sent in its place in the order.
    func dispatch(_ batch: [DeployEvent]) async {
        var created: [(agentID: String, deploymentID: String)] = []
        for event in batch {
            switch event {
            case .deploymentCreated(let agentID, let deploymentID):
                created.append((agentID, deploymentID))
            case .deploymentCancelled(let agentID, let deploymentID):
                await sendCreated(created)
                created.removeAll()
                await hub.send(.cancel(id: deploymentID), to: agentID)
            case .deploymentChanged, .logAppended:
                continue
            }
        }
        await sendCreated(created)
    }

    /// Sends each created deployment whose agent is connected here and which is still that agent's
    /// newest pending one (a later deployment or a cancellation may have overtaken it).
    private func sendCreated(_ created: [(agentID: String, deploymentID: String)]) async {
        guard !created.isEmpty else { return }
        let connected = await hub.connected(among: created.map(\.agentID))
        guard !connected.isEmpty else { return }
        do {
            let orders = try await deploy.pendingOrders(forAgentIDs: Array(connected))
            var messages: [(agentID: String, message: ServerMessage)] = []
            for (agentID, deploymentID) in created {
                guard let order = orders[agentID], order.id == deploymentID else { continue }
                messages.append((agentID, .deploy(order)))
            }
            await hub.send(messages)
        } catch {
            logger.error(
                "could not dispatch deploy events",
                metadata: ["deployments": "\(created.count)", "error": "\(error)"])
        }
    }
}

extension JSONEncoder {
    static var capstanAgent: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }
}

extension JSONDecoder {
    static var capstanAgent: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
