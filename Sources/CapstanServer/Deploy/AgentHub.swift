import CapstanModel
import Foundation
import Logging

/// The agents connected to this replica, and a way to talk to each.
public actor AgentHub {
    /// One connection. `send` speaks the connection's own protocol, so the hub reaches Capstan
    /// agents and cachix agents alike.
    public struct Session: Sendable {
        public let id: UUID
        public let agentID: String
        let send: @Sendable (ServerMessage) async throws -> Void

        public init(id: UUID, agentID: String, send: @escaping @Sendable (ServerMessage) async throws -> Void) {
            self.id = id
            self.agentID = agentID
            self.send = send
        }

        /// A connection of another protocol: `translate` renders a message as that protocol's text
        /// frame, or nil when the protocol has no such message (it is then not sent).
        public init(
            id: UUID, agentID: String, translate: @escaping @Sendable (ServerMessage) throws -> String?,
            write: @escaping @Sendable (String) async throws -> Void
        ) {
            self.init(id: id, agentID: agentID) { message in
                if let frame = try translate(message) { try await write(frame) }
            }
        }
    }

    private var sessions: [String: Session] = [:]
    /// When this replica last saw each agent disconnect (to answer "online?" without waiting
    /// for the database's last-seen time to age).
    private var disconnectedAt: [String: Date] = [:]
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Registers a connection; an older connection of the same agent is replaced.
    public func attach(_ session: Session) {
        if sessions[session.agentID] != nil {
            logger.info("agent reconnected; replacing its previous connection", metadata: ["agent": "\(session.agentID)"])
        }
        sessions[session.agentID] = session
        disconnectedAt[session.agentID] = nil
    }

    public func detach(_ session: Session) {
        guard sessions[session.agentID]?.id == session.id else { return }
        sessions[session.agentID] = nil
        disconnectedAt[session.agentID] = Date()
    }

    public func isConnected(_ agentID: String) -> Bool { sessions[agentID] != nil }

    public func lastDisconnect(_ agentID: String) -> Date? { disconnectedAt[agentID] }

    public var connectedCount: Int { sessions.count }

    public var connectedAgentIDs: [String] { Array(sessions.keys) }

    /// Those of these agents connected here.
    public func connected(among agentIDs: [String]) -> Set<String> {
        Set(agentIDs.filter { sessions[$0] != nil })
    }

    /// Sends each message to its agent if it is connected here, all at once: each write waits for
    /// its own connection only. Returns how many were sent.
    @discardableResult
    public func send(_ messages: [(agentID: String, message: ServerMessage)]) async -> Int {
        let targets = messages.compactMap { item in sessions[item.agentID].map { (session: $0, message: item.message) } }
        guard targets.count > 1 else {
            guard let target = targets.first else { return 0 }
            return await send(target.message, to: target.session.agentID) ? 1 : 0
        }
        let logger = logger
        return await withTaskGroup(of: Bool.self) { group in
            for target in targets {
                group.addTask {
                    do {
                        try await target.session.send(target.message)
                        return true
                    } catch {
                        logger.warning(
                            "could not send to agent", metadata: ["agent": "\(target.session.agentID)", "error": "\(error)"])
                        return false
                    }
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }

    /// Sends to the agent if it is connected here; false otherwise.
    @discardableResult
    public func send(_ message: ServerMessage, to agentID: String) async -> Bool {
        guard let session = sessions[agentID] else { return false }
        do {
            try await session.send(message)
            return true
        } catch {
            logger.warning("could not send to agent", metadata: ["agent": "\(agentID)", "error": "\(error)"])
            return false
        }
    }
}
