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
    /// How often the hub records its connected agents as seen, so other replicas show them online.
    static let heartbeat: Duration = .seconds(15)

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
        // Made before the session so that a revocation also drops what the agent sent and is not handled yet.
        let inbox = AgentInbox()
        let connection = AgentHub.Session(
            id: UUID(), agentID: agentID, tokenID: principal.tokenID,
            send: { message in
                if let frame = try codec.frame(for: message, agentID: agentID) {
                    try await outbound.write(.text(frame))
                }
            },
            close: {
                inbox.close()
                try? await outbound.close(.policyViolation, reason: "the agent's token was revoked")
            })
        // Welcomed first: an agent drops a deployment that arrives before it is registered.
        try await connection.send(.welcome(agentID: agent.id, cache: try await deploy.cacheFor(agent)))
        await hub.attach(connection)
        do {
            await dispatcher.handOver(to: agent.id)
            try await serve(
                agent, hello: hello, connectedAt: connectedAt, codec: codec, inbox: inbox, frames: &frames,
                outbound: outbound, logger: logger)
        } catch {
            await disconnected(agent, connection)
            throw error
        }
        await disconnected(agent, connection)
        logger.info("agent disconnected", metadata: ["agent": "\(agent.name)"])
    }

    /// The agent's last-seen time is written when it goes, except when the server stops: every agent
    /// goes then, and the hub's heartbeat wrote it moments ago.
    private func disconnected(_ agent: AgentRecord, _ connection: AgentHub.Session) async {
        await hub.detach(connection)
        if !Task.isShuttingDownGracefully { try? await deploy.agentsSeen(ids: [agent.id]) }
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
        _ agent: AgentRecord, hello: AgentHello, connectedAt: Date, codec: some AgentCodec, inbox: AgentInbox,
        frames: inout WebSocketInboundMessageStream.AsyncIterator, outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        // Frames are read on while a message is handled (pongs are seen only as frames are read);
        // messages are handled one at a time, in the order the agent sent them. Child tasks: the
        // handler (true) and the timers (false), which run until cancelled.
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                await runTimers(
                    agent, hello: hello, connectedAt: connectedAt, reconciles: codec.reportsRunningDeployments,
                    logger: logger)
                return false
            }
            group.addTask {
                try await handleInOrder(inbox, from: agent, outbound: outbound, logger: logger)
                return true
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
                guard await inbox.push(message, bytes: text.utf8.count) else { break }
            }
            inbox.finish()
            while let handlerEnded = try await group.next(), !handlerEnded {}
            group.cancelAll()
        }
    }

    /// The reconciliation, once, `reconcileDelay` after the agent connected; the task then ends, so
    /// an idle connection holds no timer (the hub records every connected agent as seen).
    private func runTimers(
        _ agent: AgentRecord, hello: AgentHello, connectedAt: Date, reconciles: Bool, logger: Logger
    ) async {
        guard reconciles else { return }
        do {
            try await Task.sleep(for: reconcileDelay)
        } catch {
            return
        }
        do {
            try await deploy.reconcile(agent, running: hello.runningDeployment, connectedAt: connectedAt)
        } catch {
            if Task.isCancelled { return }
            logger.warning(
                "could not record the agent's reconnection",
                metadata: ["agent": "\(agent.name)", "error": "\(error)"])
        }
    }

    /// Handles the inbox's messages until it ends. A failure other than a refused message ends the
    /// session, as it did when messages were handled as they were read: the socket is closed.
    private func handleInOrder(
        _ inbox: AgentInbox, from agent: AgentRecord, outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        do {
            while let message = await inbox.next() {
                do {
                    try await handle(message, from: agent)
                } catch let error as ServiceError {
                    logger.warning("agent message refused", metadata: ["agent": "\(agent.name)", "error": "\(error)"])
                }
            }
        } catch {
            inbox.close()
            try? await outbound.close(.unexpectedServerError, reason: "the server could not record a report")
            throw error
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
