import CapstanModel
import CapstanServices
import Foundation
import HummingbirdWebSocket
import Logging

/// The agents connected to this replica, and a way to talk to each.
public actor AgentHub: AgentOutbox {
    /// One connection. `send` speaks the connection's own protocol, so the hub reaches Capstan
    /// agents and cachix agents alike.
    public struct Session: Sendable {
        public let id: UUID
        public let agentID: String
        /// The token that authenticated the connection: revoking it closes the connection.
        public let tokenID: String
        let send: @Sendable (ServerMessage) async throws -> Void
        let close: @Sendable () async -> Void

        public init(
            id: UUID, agentID: String, tokenID: String, send: @escaping @Sendable (ServerMessage) async throws -> Void,
            close: @escaping @Sendable () async -> Void
        ) {
            self.id = id
            self.agentID = agentID
            self.tokenID = tokenID
            self.send = send
            self.close = close
        }
    }

    /// Other sockets a token holds open (a cachix agent's deployment and log sockets, log viewers).
    private var others: [UUID: (tokenID: String, close: @Sendable () async -> Void)] = [:]
    private var sessions: [String: Session] = [:]
    /// The last deployment ordered on each connection: the hand-over at connect and the dispatch of a
    /// creation can both find the same pending deployment, and an agent must get its order once.
    private var lastOrder: [UUID: String] = [:]
    /// When this replica last saw each agent disconnect (to answer "online?" without waiting
    /// for the database's last-seen time to age).
    private var disconnectedAt: [String: Date] = [:]
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
        ServerMetrics.agentsConnected(0)
    }

    /// Registers a connection; an older connection of the same agent is replaced.
    public func attach(_ session: Session) {
        if sessions[session.agentID] != nil {
            logger.info(
                "agent reconnected; replacing its previous connection", metadata: ["agent": "\(session.agentID)"])
        }
        sessions[session.agentID] = session
        disconnectedAt[session.agentID] = nil
        ServerMetrics.agentsConnected(sessions.count)
    }

    public func detach(_ session: Session) {
        lastOrder[session.id] = nil
        guard sessions[session.agentID]?.id == session.id else { return }
        sessions[session.agentID] = nil
        disconnectedAt[session.agentID] = Date()
        ServerMetrics.agentsConnected(sessions.count)
    }

    public func isConnected(_ agentID: String) -> Bool { sessions[agentID] != nil }

    public func lastDisconnect(_ agentID: String) -> Date? { disconnectedAt[agentID] }

    public var connectedCount: Int { sessions.count }

    public var connectedAgentIDs: [String] { Array(sessions.keys) }

    /// Those of these agents connected here.
    /// Every `interval`, records the agents connected here as seen, all in one write (so other
    /// replicas show them online), until cancelled. One timer for the fleet: a timer per connection
    /// cost a task on every connection and a write per agent, 667 writes a second at 10,000 agents.
    func recordSeen(every interval: Duration, deploy: DeployService) async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            let ids = Array(sessions.keys)
            do {
                try await deploy.agentsSeen(ids: ids)
            } catch {
                logger.warning(
                    "could not record the connected agents' last-seen time",
                    metadata: ["agents": "\(ids.count)", "error": "\(error)"])
            }
        }
    }

    public func connected(among agentIDs: [String]) -> Set<String> {
        Set(agentIDs.filter { sessions[$0] != nil })
    }

    /// Sends each message to its agent if it is connected here, all at once: each write waits for
    /// its own connection only. Returns how many were sent.
    @discardableResult
    public func send(_ messages: [(agentID: String, message: ServerMessage)]) async -> Int {
        var targets: [(session: Session, message: ServerMessage)] = []
        for item in messages {
            guard let session = sessions[item.agentID] else { continue }
            if case .deploy(let order) = item.message {
                // Recorded before any await, so a concurrent send of the same order sees it.
                if lastOrder[session.id] == order.id { continue }
                lastOrder[session.id] = order.id
            }
            targets.append((session, item.message))
        }
        let logger = logger
        if targets.count == 1, let target = targets.first {
            do {
                try await target.session.send(target.message)
                return 1
            } catch {
                logger.warning(
                    "could not send to agent", metadata: ["agent": "\(target.session.agentID)", "error": "\(error)"])
                return 0
            }
        }
        return await withTaskGroup(of: Bool.self) { group in
            for target in targets {
                group.addTask {
                    do {
                        try await target.session.send(target.message)
                        return true
                    } catch {
                        logger.warning(
                            "could not send to agent",
                            metadata: ["agent": "\(target.session.agentID)", "error": "\(error)"])
                        return false
                    }
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }

    /// Registers a socket that `tokenID` authenticated, closed with `close` if the token is revoked; see `tracking`.
    func track(tokenID: String, close: @escaping @Sendable () async -> Void) -> UUID {
        let id = UUID()
        others[id] = (tokenID, close)
        return id
    }

    func untrack(_ id: UUID) { others[id] = nil }

    /// Closes every connection `tokenID` authenticated, all at once.
    @discardableResult
    public func close(tokenID: String) async -> Int {
        let closers =
            sessions.values.filter { $0.tokenID == tokenID }.map(\.close)
            + others.values.filter { $0.tokenID == tokenID }.map(\.close)
        await withTaskGroup(of: Void.self) { group in
            for close in closers { group.addTask { await close() } }
        }
        return closers.count
    }
}

extension AgentHub {
    /// Runs a socket's handler; if the token that authenticated it is revoked meanwhile, the socket is closed.
    nonisolated func tracking(
        _ principal: Principal, _ outbound: WebSocketOutboundWriter, _ body: () async throws -> Void
    ) async throws {
        try await tracking(
            tokenID: principal.tokenID,
            close: {
                try? await outbound.close(.policyViolation, reason: "the token was revoked")
            }, body)
    }

    /// Runs `body` with `close` registered for revocations of `tokenID`, for exactly the body's run: it
    /// is unregistered before this returns or throws, so nothing outlives the socket's handler and no
    /// later revocation reaches a socket that is gone.
    public nonisolated func tracking(
        tokenID: String, close: @escaping @Sendable () async -> Void, _ body: () async throws -> Void
    ) async throws {
        let id = await track(tokenID: tokenID, close: close)
        do {
            try await body()
        } catch {
            await untrack(id)
            throw error
        }
        await untrack(id)
    }

    /// How many sockets other than agent sessions are registered for revocation.
    public var trackedSocketCount: Int { others.count }
}
