import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import Logging
import NIOCore
import NixCore
import TestSupport
import Testing

/// The services of one server, in process, on a fresh database of the chosen backend, with a
/// workspace and a principal of every token kind. The socket layer is replaced by `RecordingOutbox`.
struct Services {
    let store: CapstanStore
    let tokens: TokenService
    let caches: CacheService
    let deploy: DeployService
    let dispatcher: AgentDispatcher
    let outbox: RecordingOutbox
    let events: EventBus
    let workspace: WorkspaceRecord
    let cache: CacheRecord
    /// Where the database is, for a second replica on it.
    var databaseURL: String? = nil
    var dataDirectory = ""

    static let logger: Logger = {
        var logger = Logger(label: "capstan.services.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// Runs `body` with fresh services and shuts the database down afterwards, whatever happens.
    static func with<R: Sendable>(
        _ backend: DatabaseBackend, maxNarSize: UInt64 = 1 << 30, logLimits: LogLimits = LogLimits(),
        lifecycle: CacheLifecycleSettings = CacheLifecycleSettings(), _ body: (Services) async throws -> R
    ) async throws -> R {
        let directory = try TemporaryDirectory("capstan-services")
        let url: String? = backend == .postgres ? try PostgresServer.shared().createDatabase() : nil
        let store = try await CapstanStore.open(databaseURL: url, dataDirectory: directory.path, logger: logger)
        do {
            try await store.migrate()
            var services = try await make(
                store: store, maxNarSize: maxNarSize, logLimits: logLimits, lifecycle: lifecycle)
            services.databaseURL = url
            services.dataDirectory = directory.path
            let result = try await body(services)
            try await store.shutdown()
            withExtendedLifetime(directory) {}
            return result
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    private static func make(
        store: CapstanStore, maxNarSize: UInt64, logLimits: LogLimits, lifecycle: CacheLifecycleSettings
    ) async throws -> Services {
        let tokens = TokenService(store: store, logger: logger)
        let events = EventBus(store: store, logger: logger)
        let caches = CacheService(
            store: store, blobs: store.blobs, publicURL: "http://capstan.test", maxNarSize: maxNarSize,
            lifecycle: lifecycle, events: events, logger: logger)
        let outbox = RecordingOutbox()
        let deploy = DeployService(
            store: store, tokens: tokens, caches: caches, outbox: outbox, events: events,
            publicURL: "http://capstan.test", logger: logger, logLimits: logLimits)
        let dispatcher = AgentDispatcher(deploy: deploy, outbox: outbox, events: events, logger: logger)
        let workspace = try await store.createWorkspace(name: "main")
        let admin = try await tokens.issue(
            kind: .admin, workspaceID: workspace.id, cacheID: nil, agentID: nil, label: "admin")
        let adminPrincipal = try await tokens.authenticate(secret: admin.token)
        _ = try await caches.create(CreateCacheRequest(name: "fleet", isPublic: false), by: adminPrincipal)
        let cache = try await caches.readableCache(named: "fleet", by: adminPrincipal)
        return Services(
            store: store, tokens: tokens, caches: caches, deploy: deploy, dispatcher: dispatcher, outbox: outbox,
            events: events, workspace: workspace, cache: cache)
    }

    /// The deploy service of a second server replica on the same database, with its own store and
    /// event bus; `body` runs with it and its store is shut down afterwards.
    func withReplica<R: Sendable>(_ body: (DeployService) async throws -> R) async throws -> R {
        let store = try await CapstanStore.open(
            databaseURL: databaseURL, dataDirectory: dataDirectory, logger: Self.logger)
        do {
            let events = EventBus(store: store, logger: Self.logger)
            let tokens = TokenService(store: store, logger: Self.logger)
            let caches = CacheService(
                store: store, blobs: store.blobs, publicURL: "http://capstan.test", maxNarSize: 1 << 30,
                events: events, logger: Self.logger)
            let deploy = DeployService(
                store: store, tokens: tokens, caches: caches, outbox: RecordingOutbox(), events: events,
                publicURL: "http://capstan.test", logger: Self.logger)
            let result = try await body(deploy)
            try await store.shutdown()
            return result
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    /// A principal of `kind` in this workspace (push and read tokens of the `fleet` cache; agent tokens of `agent`).
    func principal(_ kind: TokenKind, agent: String = "web1", workspace: WorkspaceRecord? = nil) async throws
        -> Principal
    {
        let home = workspace ?? self.workspace
        var agentID: String?
        if kind == .agent {
            let agentRecord = try await store.agent(workspaceID: home.id, name: agent)
            agentID = agentRecord?.id
        }
        let created = try await tokens.issue(
            kind: kind, workspaceID: home.id, cacheID: kind == .push || kind == .read ? cache.id : nil,
            agentID: agentID, label: "\(kind.rawValue) token")
        return try await tokens.authenticate(secret: created.token)
    }

    /// Adds an agent through the service and returns its record.
    func addAgent(_ name: String) async throws -> AgentRecord {
        _ = try await deploy.createAgent(CreateAgentRequest(name: name), by: try await principal(.admin))
        return try #require(try await store.agent(workspaceID: workspace.id, name: name))
    }
}

/// The agents this replica would hold connections to; what was sent to each, in order.
actor RecordingOutbox: AgentOutbox {
    private(set) var connectedAgents: Set<String> = []
    private(set) var sent: [(agentID: String, message: ServerMessage)] = []

    func connect(_ agentID: String) { connectedAgents.insert(agentID) }

    func isConnected(_ agentID: String) -> Bool { connectedAgents.contains(agentID) }
    func lastDisconnect(_ agentID: String) -> Date? { nil }
    func connected(among agentIDs: [String]) -> Set<String> { connectedAgents.intersection(agentIDs) }

    @discardableResult
    func send(_ messages: [(agentID: String, message: ServerMessage)]) -> Int {
        let delivered = messages.filter { connectedAgents.contains($0.agentID) }
        sent += delivered
        return delivered.count
    }

    @discardableResult
    func close(tokenID: String) -> Int { 0 }

    func messages(to agentID: String) -> [ServerMessage] { sent.filter { $0.agentID == agentID }.map(\.message) }
}

/// A NAR of one regular file, and what a client would declare about it.
struct SampleNar {
    let bytes: [UInt8]
    var info: PathUploadInfo

    init(contents: String, name: String = "hello") {
        bytes = NarTokens().tokens("nix-archive-1").file(contents).bytes
        let hash = NixHasher.hash(.sha256, bytes)
        let storePath = StorePath.known(
            "/nix/store/\(Nix32.encode(Array(NixHasher.hash(.sha256, Array(contents.utf8)).bytes.prefix(20))))-\(name)")
        info = PathUploadInfo(
            storePath: storePath, narHash: hash.narInfoString, narSize: UInt64(bytes.count), references: [],
            deriver: nil, sigs: [], ca: nil)
    }

    var body: [ByteBuffer] { [ByteBuffer(bytes: bytes)] }

    /// The file `nix copy` uploads this NAR as (uncompressed): `<sha256 in nix32>.nar`.
    var fileName: String { NixHasher.hash(.sha256, bytes).digest(.nix32) + ".nar" }

    /// The narinfo `nix copy` sends for this NAR uploaded as `fileName`, under `storePath` (its own by default).
    func narInfo(storePath: StorePath? = nil) -> String {
        """
        StorePath: \(storePath ?? info.storePath)
        URL: nar/\(fileName)
        Compression: none
        NarHash: \(info.narHash)
        NarSize: \(info.narSize)
        References: \n
        """
    }
}

/// Runs `count` operations at once; the service errors they end with (any other error becomes one saying so).
func serviceErrors(of count: Int, _ operation: @escaping @Sendable (Int) async throws -> Void) async -> [ServiceError] {
    await withTaskGroup(of: ServiceError?.self) { group in
        for index in 0..<count {
            group.addTask {
                do {
                    try await operation(index)
                    return nil
                } catch let error as ServiceError {
                    return error
                } catch {
                    return ServiceError(.unavailable, "unexpected: \(error)")
                }
            }
        }
        return await group.reduce(into: []) { $0.append($1) }.compactMap { $0 }
    }
}
