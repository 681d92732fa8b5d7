import CapstanModel
import CapstanServices
import Foundation

/// Capstan's server → agent messages as a cachix agent receives them.
enum CachixAgentFrames {
    /// The frame for `message`, or nil when the cachix protocol has no such message (a cancel:
    /// a cachix agent learns of it only when its deployment's status no longer lets it start).
    static func frame(for message: ServerMessage, agentID: String) throws -> String? {
        let command: CachixWire.BackendCommand
        switch message {
        case .welcome(let id, let cache):
            command = .agentRegistered(.init(cache: cache.map(summary), id: id))
        case .deploy(let order):
            command = .deployment(
                .init(
                    storePath: order.storePath, id: order.id, index: order.index, rollbackScript: order.rollbackScript))
        case .cancel:
            return nil
        }
        return try CachixWire.text(
            CachixWire.Envelope(
                method: command.tag, command: command, agent: agentID, id: UUID().uuidString.lowercased()))
    }

    static func summary(_ cache: AgentCache) -> CachixWire.CacheSummary {
        .init(cacheName: cache.name, publicKey: bareKey(cache.publicKey), isPublic: cache.isPublic)
    }

    /// `name:base64` → `base64`: cachix sends keys without their name.
    static func bareKey(_ key: String) -> String {
        guard let colon = key.firstIndex(of: ":") else { return key }
        return String(key[key.index(after: colon)...])
    }
}
