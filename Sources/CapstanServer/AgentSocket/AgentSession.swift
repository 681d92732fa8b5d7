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
    /// How often every WebSocket is pinged; one unanswered by the next ping is closed.
    let pingInterval: Duration
    /// How often the hub records its connected agents as seen, so other replicas show them online.
    static let heartbeat: Duration = .seconds(15)

    /// Runs the session. `hello` is the agent's introduction when the protocol carries it outside the
    /// socket (cachix: headers); otherwise the first frame must be one.
    @inline(never)
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
        // Made before the session so that a revocation also drops what the agent sent and is not handled yet.
        let inbox = AgentInbox()
        // The introduction's database calls go deep; run on the connection's own task, they would
        // keep that stack's memory for the whole connection.
        let connectedAt = Date()
        let introduced = try await Self.onFreshStack {
            try await introduce(principal, hello: hello, codec: codec, inbox: inbox, outbound: outbound)
        }
        guard let (agent, connection) = introduced else { return }
        let live = LiveAgent(agent: agent, hello: hello, connectedAt: connectedAt, connection: connection, inbox: inbox)
        do {
            try await serve(live, codec: codec, frames: &frames, outbound: outbound, logger: logger)
        } catch {
            await disconnected(agent, connection)
            throw error
        }
        await disconnected(agent, connection)
        logger.info("agent disconnected", metadata: ["agent": "\(agent.name)"])
    }

    /// What a served connection keeps, behind one reference: the frames of the functions that wait
    /// on a connection for its whole life stay small (ten thousand of them at once).
    final class LiveAgent: Sendable {
        let agent: AgentRecord
        let hello: AgentHello
        let connectedAt: Date
        let connection: AgentHub.Session
        let inbox: AgentInbox

        init(agent: AgentRecord, hello: AgentHello, connectedAt: Date, connection: AgentHub.Session, inbox: AgentInbox)
        {
            self.agent = agent
            self.hello = hello
            self.connectedAt = connectedAt
            self.connection = connection
            self.inbox = inbox
        }
    }

    /// Pings the upgraded connection of `context` from its event loop (see `WebSocketKeepAlive`).
    func keepAlive(_ context: WebSocketRouterContext<AgentSocketContext>) async throws {
        try await WebSocketKeepAlive.install(on: context.requestContext.channel, period: pingInterval)
    }

    /// Registers the agent, welcomes it, attaches it to the hub and hands over its pending deployment.
    /// Nil when the agent was refused (the socket is then closed with the reason).
    @inline(never)
    private func introduce(
        _ principal: Principal, hello: AgentHello, codec: some AgentCodec, inbox: AgentInbox,
        outbound: WebSocketOutboundWriter
    ) async throws -> (AgentRecord, AgentHub.Session)? {
        let agent: AgentRecord
        do {
            agent = try await deploy.agentConnected(principal, hello: hello)
        } catch let error as ServiceError {
            try await outbound.close(.policyViolation, reason: String(error.message.prefix(120)))
            return nil
        }
        let agentID = agent.id
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
        await dispatcher.handOver(to: agent.id)
        return (agent, connection)
    }

    /// Runs `body` on a child task that ends with it. A task keeps the memory of its deepest call
    /// until it ends: work that goes deep once must not run on a task that lives as long as a connection.
    @inline(never)
    static func onFreshStack<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask(operation: body)
            guard let result = try await group.next() else { throw CancellationError() }
            return result
        }
    }

    /// The agent's last-seen time is written when it goes, except when the server stops: every agent
    /// goes then, and the hub's heartbeat wrote it moments ago.
    @inline(never)
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

    @inline(never)
    private func serve(
        _ live: LiveAgent, codec: some AgentCodec, frames: inout WebSocketInboundMessageStream.AsyncIterator,
        outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        // Frames are read on while a message is handled (pongs are seen only as frames are read);
        // messages are handled one at a time, in the order the agent sent them, by a handler that
        // runs only while messages wait (see `AgentInbox`). The timers run until cancelled.
        // Discarding groups: a finished child of an ordinary group, and the memory of its stack, is
        // kept until the group is asked for it, here for as long as the connection lasts.
        try await withThrowingDiscardingTaskGroup { timers in
            if codec.reportsRunningDeployments {
                timers.addTask {
                    await reconcileLater(live.agent, hello: live.hello, connectedAt: live.connectedAt, logger: logger)
                }
            }
            defer { timers.cancelAll() }
            try await withThrowingDiscardingTaskGroup { handlers in
                while let frame = try await frames.next() {
                    guard case .text(let text) = frame else { continue }
                    let message: AgentMessage?
                    do {
                        message = try codec.message(from: text)
                    } catch {
                        logger.warning(
                            "ignoring an unreadable message from agent", metadata: ["agent": "\(live.agent.name)"])
                        continue
                    }
                    guard let message else {
                        logger.debug(
                            "agent says", metadata: ["agent": "\(live.agent.name)", "message": "\(text.prefix(200))"])
                        continue
                    }
                    guard case .queued(let startHandler, let full) = live.inbox.enqueue(message, bytes: text.utf8.count)
                    else { break }
                    if startHandler {
                        handlers.addTask {
                            try await handleQueued(live.inbox, from: live.agent, outbound: outbound, logger: logger)
                        }
                    }
                    if full, await !live.inbox.room() { break }
                }
            }
        }
    }

    /// The reconciliation, once, `reconcileDelay` after the agent connected; the task then ends, so
    /// an idle connection holds no timer (the hub records every connected agent as seen).
    @inline(never)
    private func reconcileLater(_ agent: AgentRecord, hello: AgentHello, connectedAt: Date, logger: Logger) async {
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

    /// Handles the inbox's messages until it is empty. A failure other than a refused message ends
    /// the session, as it did when messages were handled as they were read: the socket is closed.
    @inline(never)
    private func handleQueued(
        _ inbox: AgentInbox, from agent: AgentRecord, outbound: WebSocketOutboundWriter, logger: Logger
    ) async throws {
        do {
            while let message = inbox.nextToHandle() {
                do {
                    try await deploy.reportTurns.run { try await handle(message, from: agent) }
                } catch let error as ServiceError {
                    logger.warning("agent message refused", metadata: ["agent": "\(agent.name)", "error": "\(error)"])
                }
            }
        } catch is CancellationError {
            // The session ends while the report waited its turn.
            inbox.close()
            throw CancellationError()
        } catch {
            inbox.close()
            try? await outbound.close(.unexpectedServerError, reason: "the server could not record a report")
            throw error
        }
    }

    @inline(never)
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
            // The next deployment may already be waiting.
            if let next = try await deploy.agentFinished(agent, outcome: outcome) {
                await dispatcher.send(next, to: agent.id)
            }
        }
    }
}
