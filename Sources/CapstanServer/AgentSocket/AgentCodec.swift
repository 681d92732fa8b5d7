import CapstanModel
import CapstanServices
import Foundation

/// How one agent protocol reads and writes the text frames of its control socket. The session's
/// lifecycle is the same for every protocol; only the frames differ.
protocol AgentCodec: Sendable {
    /// Whether the agent says which deployment it still runs when it reconnects, so that the
    /// server may fail the ones it no longer mentions.
    var reportsRunningDeployments: Bool { get }
    /// Renders a message as this protocol's frame, or nil when the protocol has no such message.
    func frame(for message: ServerMessage, agentID: String) throws -> String?
    /// Reads a frame the agent sent; nil when it carries nothing the server acts on.
    func message(from text: String) throws -> AgentMessage?
}

/// Capstan's own protocol: `AgentMessage` and `ServerMessage` as JSON, one per frame.
struct CapstanAgentCodec: AgentCodec {
    var reportsRunningDeployments: Bool { true }

    func frame(for message: ServerMessage, agentID: String) throws -> String? {
        String(decoding: try JSONEncoder.capstan.encode(message), as: UTF8.self)
    }

    func message(from text: String) throws -> AgentMessage? {
        try JSONDecoder.capstan.decode(AgentMessage.self, from: Data(text.utf8))
    }
}

/// The cachix agent's control socket (`/ws`): the server's messages in cachix envelopes. The
/// agent's progress arrives on other sockets (`/ws-deployment`, the log sockets), so nothing it
/// says here is acted on.
struct CachixAgentCodec: AgentCodec {
    /// A cachix agent runs deployments in processes of their own that outlive this socket, and does
    /// not say which ones are still running.
    var reportsRunningDeployments: Bool { false }

    func frame(for message: ServerMessage, agentID: String) throws -> String? {
        try CachixAgentFrames.frame(for: message, agentID: agentID)
    }

    func message(from text: String) throws -> AgentMessage? { nil }
}
