import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import HummingbirdWebSocket
import Logging
import ServiceLifecycle

/// One agent's control socket, whatever its protocol: hello, welcome, attach to the hub, the
/// pending deployment, heartbeats and the agent's reports, detach. Orders reach the agent only
/// through the dispatcher (and so through the hub); the session itself sends only the welcome.
/// Pings are automatic (see `CapstanServer`), so a dead agent is noticed within a minute.
struct AgentSession: Sendable {
    let deploy: DeployService
    let dispatcher: AgentDispatcher
    let hub: AgentHub
    /// How long the server waits before failing deployments a reconnected agent did not report.
    let reconcileDelay: Duration
    /// How often the session refreshes the agent's last-seen time, so other replicas show it online.
    var heartbeat: Duration = .seconds(15)

    /// Runs the session. `hello` is the agent's introduction when the protocol carries it outside the
    /// socket (cachix: headers); otherwise the first frame must be one.
    func run(
        principal: Principal, hello: AgentHello?, codec: some AgentCodec, inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        var frames = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
        var introduction = hello
        if introduction == nil { introduction = try await Self.readHello(&frames, codec: codec) }
        guard let hello = introduction else {
            try await outbound.close(.protocolError, reason: "the first message must be a hello")
            return
        }
        let agent: AgentRecord
        let connectedAt = Date()
        do {
            agent = try await deploy.agentConnected(principal, hello: hello)
        } catch let error as ServiceError {
            try await outbound.close(.policyViolation, reason: String(error.message.prefix(120)))
            return
        }
        let agentID = agent.id
        let connection = AgentHub.Session(
            id: UUID(), agentID: agentID, tokenID: principal.tokenID,
            send: { message in
                if let frame = try codec.frame(for: message, agentID: agentID) {
                    try await outbound.write(.text(frame))
                }
            },
            close: { try? await outbound.close(.policyViolation, reason: "the agent's token was revoked") })
        // Welcomed first: an agent drops a deployment that arrives before it is registered.
        try await connection.send(.welcome(agentID: agent.id, cache: try await deploy.cacheFor(agent)))
        await hub.attach(connection)
        do {
            await dispatcher.handOver(to: agent.id)
            try await serve(
                agent, hello: hello, connectedAt: connectedAt, codec: codec, frames: &frames, logger: logger)
        } catch {
            await disconnected(agent, connection)
            throw error
        }
        await disconnected(agent, connection)
        logger.info("agent disconnected", metadata: ["agent": "\(agent.name)"])
    }

    /// The agent's last-seen time is written when it goes, except when the server stops: every agent
    /// goes then, and the heartbeat wrote it moments ago.
    private func disconnected(_ agent: AgentRecord, _ connection: AgentHub.Session) async {
        await hub.detach(connection)
        if !Task.isShuttingDownGracefully { try? await deploy.agentSeen(agent) }
    }

    private static func readHello(
        _ frames: inout WebSocketInboundMessageStream.AsyncIterator, codec: some AgentCodec
    ) async throws -> AgentHello? {
        guard case .text(let first)? = try await frames.next(),
            case .hello(let hello)? = try? codec.message(from: first)
        else { return nil }
        return hello
    }

    private func serve(
        _ agent: AgentRecord, hello: AgentHello, connectedAt: Date, codec: some AgentCodec,
        frames: inout WebSocketInboundMessageStream.AsyncIterator, logger: Logger
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            if codec.reportsRunningDeployments {
                group.addTask {
                    try await Task.sleep(for: reconcileDelay)
                    try await deploy.reconcile(agent, running: hello.runningDeployment, connectedAt: connectedAt)
                }
            }
            group.addTask {
                while true {
                    try await Task.sleep(for: heartbeat)
                    try await deploy.agentSeen(agent)
                }
            }
            while let frame = try await frames.next() {
                guard case .text(let text) = frame else { continue }
                let message: AgentMessage?
                do {
                    message = try codec.message(from: text)
                } catch {
                    logger.warning("ignoring an unreadable message from agent", metadata: ["agent": "\(agent.name)"])
                    continue
                }
                guard let message else {
                    logger.debug("agent says", metadata: ["agent": "\(agent.name)", "message": "\(text.prefix(200))"])
                    continue
                }
                do {
                    try await handle(message, from: agent)
                } catch let error as ServiceError {
                    logger.warning("agent message refused", metadata: ["agent": "\(agent.name)", "error": "\(error)"])
                }
            }
            group.cancelAll()
        }
    }

    private func handle(_ message: AgentMessage, from agent: AgentRecord) async throws {
        switch message {
        case .hello:
            break
        case .started(let id, let closureSize):
            if try await !deploy.agentStarted(agent, deploymentID: id, closureSize: closureSize) {
                await dispatcher.cancel(deploymentID: id, agentID: agent.id)
            }
        case .log(let id, let lines):
            try await deploy.agentLogged(agent, deploymentID: id, lines: lines)
        case .status(let status):
            try await deploy.agentStatus(agent, status: status)
        case .localAction(let report):
            try await deploy.agentLocalAction(agent, report: report)
        case .finished(let outcome):
            try await deploy.agentFinished(agent, outcome: outcome)
            // The next deployment may already be waiting.
            await dispatcher.handOver(to: agent.id)
        }
    }
}
