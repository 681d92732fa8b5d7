import CapstanModel
import Foundation
import NixCore

/// One deployment of one store path to one agent, as stored.
public struct DeploymentRecord: Sendable, Equatable, Hashable {
    public var id: String
    public var workspaceID: String
    public var agentID: String
    /// 1, 2, 3… per agent, in the order the deployments were created.
    public var index: Int
    public var storePath: StorePath
    /// deploy.json's `rollbackScript`: a store path per Nix system.
    public var rollbackScript: [String: StorePath]?
    public var status: DeploymentStatus
    /// Why it failed or was cancelled.
    public var reason: String?
    /// On failure: whether the agent went back to its previous configuration.
    public var rolledBack: Bool
    public var closureSize: Int64?
    public var createdAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Label of the token that started it.
    public var createdBy: String?
    /// Shared by the deployments one activation of a deploy.json created.
    public var activationID: String?
    /// What the deploy.json asks of the agent's activation.
    public var activation: ActivationSettings?
    /// The health check results the agent reported.
    public var checkResults: [CheckResult]?

    public init(
        id: String, workspaceID: String, agentID: String, index: Int, storePath: StorePath,
        rollbackScript: [String: StorePath]? = nil, status: DeploymentStatus, reason: String? = nil,
        rolledBack: Bool = false,
        closureSize: Int64? = nil, createdAt: Date, startedAt: Date? = nil, finishedAt: Date? = nil,
        createdBy: String? = nil, activationID: String? = nil, activation: ActivationSettings? = nil,
        checkResults: [CheckResult]? = nil
    ) {
        self.id = id
        self.workspaceID = workspaceID
        self.agentID = agentID
        self.index = index
        self.storePath = storePath
        self.rollbackScript = rollbackScript
        self.status = status
        self.reason = reason
        self.rolledBack = rolledBack
        self.closureSize = closureSize
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.createdBy = createdBy
        self.activationID = activationID
        self.activation = activation
        self.checkResults = checkResults
    }
}

/// What an activation asks for one agent.
public struct DeploymentRequest: Sendable, Equatable, Hashable {
    public var agentID: String
    public var storePath: StorePath
    public var rollbackScript: [String: StorePath]?
    /// Nil when the deploy.json asks nothing of the activation.
    public var activation: ActivationSettings?

    public init(
        agentID: String, storePath: StorePath, rollbackScript: [String: StorePath]? = nil,
        activation: ActivationSettings? = nil
    ) {
        self.agentID = agentID
        self.storePath = storePath
        self.rollbackScript = rollbackScript
        self.activation = activation
    }
}

/// The outcome of one activation: the new deployments, and the pending ones they cancelled.
public struct DeploymentBatch: Sendable, Equatable {
    /// One per request, in request order.
    public var created: [DeploymentRecord]
    /// Deployments that were still pending and are now `Cancelled`, as they are after the change.
    public var superseded: [DeploymentRecord]

    public init(created: [DeploymentRecord], superseded: [DeploymentRecord]) {
        self.created = created
        self.superseded = superseded
    }
}

/// A log line of a deployment with its position, so readers can continue after the last one they saw.
public struct StoredLogLine: Sendable, Equatable {
    /// 1, 2, 3… per deployment.
    public var seq: Int
    public var line: LogLine

    public init(seq: Int, line: LogLine) {
        self.seq = seq
        self.line = line
    }
}

/// The rollback scripts as the database keeps them: one JSON object, sorted, so that equal maps are equal text.
/// Values kept as JSON in one text column each (rollback scripts, activation settings, check results):
/// encoded and decoded here, so services and records see typed values.
enum JSONColumn {
    static func encode<T: Encodable>(_ value: T?) -> String? {
        guard let value else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) }
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String?) throws -> T? {
        guard let text else { return nil }
        let decoder = JSONDecoder()
        decoder.userInfo[.nixStoreDir] = StorePath.defaultStoreDir
        return try decoder.decode(T.self, from: Data(text.utf8))
    }

    /// A column the row cannot do without: text that is not a `T` is a corrupt row.
    static func decodeRow<T: Decodable>(
        _ type: T.Type, from text: String?, table: String, key: String, column: String
    ) throws -> T? {
        do {
            return try decode(type, from: text)
        } catch let DecodingError.dataCorrupted(context) {
            throw StorageError.invalidRow(table: table, key: key, reason: "\(column): \(context.debugDescription)")
        } catch {
            throw StorageError.invalidRow(table: table, key: key, reason: "\(column): \(error)")
        }
    }

    /// Nil also for text that is not a `T` (written by a newer version, say): what is only shown
    /// or only refines an activation must not make the whole deployment unreadable.
    static func lenientlyDecode<T: Decodable>(_ type: T.Type, from text: String?) -> T? {
        try? decode(type, from: text)
    }
}

/// `JSONColumn.encode` remembered per value, for a batch of rows that mostly share their settings.
struct JSONColumnMemo {
    private var texts: [AnyHashable: String?] = [:]

    mutating func json<T: Encodable & Hashable>(_ value: T?) -> String? {
        guard let value else { return nil }
        if let text = texts[AnyHashable(value)] { return text }
        let text = JSONColumn.encode(value)
        texts[AnyHashable(value)] = text
        return text
    }
}
