import CapstanModel
import CapstanServices
import Foundation
import NixCore

/// JSON shapes of the cachix protocol (see docs/cachix.md), kept apart from Capstan's own API
/// types: the adapter translates between the two and owns no rule of its own.
enum CachixWire {
    /// `{"method", "command", "agent", "id"}`, both ways on the agent's WebSockets.
    struct Envelope<Command: Sendable>: Sendable {
        var method: String
        var command: Command
        var agent: String?
        var id: String

        enum CodingKeys: String, CodingKey { case method, command, agent, id }
    }

    /// Server → agent: `{"tag": "AgentRegistered" | "Deployment", "contents": …}`.
    enum BackendCommand: Encodable, Sendable {
        case agentRegistered(AgentInformation)
        case deployment(DeploymentDetails)

        var tag: String {
            switch self {
            case .agentRegistered: "AgentRegistered"
            case .deployment: "Deployment"
            }
        }

        private enum CodingKeys: String, CodingKey { case tag, contents }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(tag, forKey: .tag)
            switch self {
            case .agentRegistered(let information): try container.encode(information, forKey: .contents)
            case .deployment(let details): try container.encode(details, forKey: .contents)
            }
        }
    }

    struct AgentInformation: Encodable, Sendable {
        var cache: CacheSummary?
        var id: String

        private enum CodingKeys: String, CodingKey { case cache, id }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            // Explicit null: the agent reads a missing cache as "none".
            try container.encode(cache, forKey: .cache)
            try container.encode(id, forKey: .id)
        }
    }

    struct CacheSummary: Encodable, Sendable {
        var cacheName: String
        /// Bare base64; the agent names the key `<cacheName>.<host>-1` itself.
        var publicKey: String
        var isPublic: Bool
    }

    struct DeploymentDetails: Encodable, Sendable {
        var storePath: StorePath
        var id: String
        var index: Int
        var rollbackScript: StorePath?

        private enum CodingKeys: String, CodingKey { case storePath, id, index, rollbackScript }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(storePath, forKey: .storePath)
            try container.encode(id, forKey: .id)
            try container.encode(index, forKey: .index)
            try container.encode(rollbackScript, forKey: .rollbackScript)
        }
    }

    /// Agent → server on `/ws-deployment`: `{"tag": "DeploymentStarted" | "DeploymentFinished", …}`.
    enum AgentCommand: Decodable, Sendable {
        case deploymentStarted(id: String, closureSize: Int64?)
        case deploymentFinished(id: String, hasSucceeded: Bool)
        case other(tag: String)

        private enum CodingKeys: String, CodingKey { case tag, id, closureSize, hasSucceeded, contents }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let tag = try container.decode(String.self, forKey: .tag)
            // Records come flattened; a positional constructor would carry them in `contents`.
            let fields =
                container.contains(.contents)
                ? try container.nestedContainer(keyedBy: CodingKeys.self, forKey: .contents) : container
            switch tag {
            case "DeploymentStarted":
                self = .deploymentStarted(
                    id: try fields.decode(String.self, forKey: .id),
                    closureSize: try fields.decodeIfPresent(Int64.self, forKey: .closureSize))
            case "DeploymentFinished":
                self = .deploymentFinished(
                    id: try fields.decode(String.self, forKey: .id),
                    hasSucceeded: try fields.decode(Bool.self, forKey: .hasSucceeded))
            default:
                self = .other(tag: tag)
            }
        }
    }

    /// One log line, both on the agent's log socket and on the viewer's.
    struct LogFrame: Codable, Sendable {
        var line: String
        var time: String
    }

    struct ActivateResponse: Encodable, Sendable {
        struct Created: Encodable, Sendable {
            var id: String
            var url: String
        }
        var agents: [String: Created]
    }

    struct Deployment: Encodable, Sendable {
        var id: String
        var index: Int
        var createdOn: String
        var startedOn: String?
        var finishedOn: String?
        var storePath: StorePath
        var closureSize: Int64?
        var status: String

        private enum CodingKeys: String, CodingKey {
            case id, index, createdOn, startedOn, finishedOn, storePath, closureSize, status
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(index, forKey: .index)
            try container.encode(createdOn, forKey: .createdOn)
            try container.encode(startedOn, forKey: .startedOn)
            try container.encode(finishedOn, forKey: .finishedOn)
            try container.encode(storePath, forKey: .storePath)
            try container.encode(closureSize, forKey: .closureSize)
            try container.encode(status, forKey: .status)
        }
    }

    struct BinaryCache: Encodable, Sendable {
        var name: String
        var uri: String
        var isPublic: Bool
        var publicSigningKeys: [String]
        var githubUsername: String
        var permission: String
        var preferredCompressionMethod: String
    }

    struct MultipartStarted: Encodable, Sendable {
        var narId: String
        var uploadId: String
    }

    struct PartRequest: Decodable, Sendable {
        var contentMD5: String?
    }

    struct PartURL: Encodable, Sendable {
        var uploadUrl: String
    }

    struct CompletedPart: Decodable, Sendable {
        var partNumber: Int
        var eTag: String
    }

    struct MultipartComplete: Decodable, Sendable {
        var parts: [CompletedPart]?
        var narInfoCreate: NarInfoCreate
    }

    struct NarInfoCreate: Decodable, Sendable {
        var cStoreHash: String
        var cStoreSuffix: String
        var cNarHash: String
        var cNarSize: UInt64
        var cFileHash: String?
        var cFileSize: UInt64?
        var cReferences: [String]
        var cDeriver: String?
        var cSig: String?

        /// The path the client names by hash and suffix, parsed here; a 400 names it when it is none.
        func storePath() throws -> StorePath {
            let text = "\(CacheService.storeDir)/\(cStoreHash)-\(cStoreSuffix)"
            do {
                return try StorePath(parsing: text)
            } catch {
                throw ServiceError.badRequest("path info for \(text): \(error)")
            }
        }
    }
}

extension CachixWire.Envelope: Encodable where Command: Encodable {
    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(method, forKey: .method)
        try container.encode(command, forKey: .command)
        try container.encode(agent, forKey: .agent)
        try container.encode(id, forKey: .id)
    }
}

extension CachixWire.Envelope: Decodable where Command: Decodable {
    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        method = try container.decodeIfPresent(String.self, forKey: .method) ?? ""
        command = try container.decode(Command.self, forKey: .command)
        agent = try container.decodeIfPresent(String.self, forKey: .agent)
        id = try container.decodeIfPresent(String.self, forKey: .id) ?? ""
    }
}

extension CachixWire {
    /// UTC ISO-8601, as the cachix client writes and reads times.
    static func time(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        return encoder
    }()

    static func text<Value: Encodable>(_ value: Value) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
