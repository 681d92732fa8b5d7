import CapstanModel
import Foundation

/// The agents connected to this replica, as the deployment rules see them: who is there, and a way
/// to hand each a message. The socket layer implements it; services never see a socket.
public protocol AgentOutbox: Sendable {
    func isConnected(_ agentID: String) async -> Bool
    /// When this replica last saw the agent disconnect, nil when it never did (or is connected).
    func lastDisconnect(_ agentID: String) async -> Date?
    /// Those of these agents connected here.
    func connected(among agentIDs: [String]) async -> Set<String>
    /// Sends each message to its agent if it is connected here, all at once; returns how many were sent.
    @discardableResult
    func send(_ messages: [(agentID: String, message: ServerMessage)]) async -> Int
    /// Ends every connection that a token authenticated (it was revoked); returns how many.
    @discardableResult
    func close(tokenID: String) async -> Int
}
