import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import Hummingbird
import HummingbirdAuth
import HummingbirdWebSocket
import Logging
import Mustache
import Prometheus
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The assembled server: storage opened and migrated, services wired under their routes.
public struct CapstanServer: Sendable {
    public let configuration: ServerConfiguration
    public let store: CapstanStore
    public let tokens: TokenService
    public let caches: CacheService
    public let deploy: DeployService
    public let webhooks: WebhookService
    public let dispatcher: AgentDispatcher
    let hub: AgentHub
    let events: EventBus
    let dashboardLibrary: MustacheLibrary
    let dashboardAssets: DashboardAssets
    let logger: Logger
    /// Where `/metrics` reads from: the registry `bootstrapMetrics()` installed, else an empty one.
    let metricsRegistry: PrometheusCollectorRegistry

    /// Installs the Prometheus backend of swift-metrics for this process. Call once, before `open`.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        ServerMetrics.bootstrapPrometheus()
    }

    /// Opens the database (applying migrations) and the blob store under the data directory.
    public static func open(
        configuration: ServerConfiguration, logger: Logger,
        metricsRegistry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()
    ) async throws -> CapstanServer {
        try DataDirectory.prepare(configuration.dataDirectory)
        // Replicas sharing a data directory or a bucket keep their writes in flight apart.
        let owner = "\(FileBlobStore.defaultOwner)-\(configuration.listenPort)"
        let blobs: any BlobStore
        if let url = configuration.blobStore {
            let location = try S3Location(url: url, environment: ProcessInfo.processInfo.environment)
            blobs = try await S3BlobStore.open(location: location, owner: owner, logger: logger)
            logger.info(
                "blobs in an object store",
                metadata: [
                    "endpoint": "\(location.endpoint)", "bucket": "\(location.bucket)", "prefix": "\(location.prefix)",
                ])
        } else {
            blobs = try FileBlobStore(
                root: (configuration.dataDirectory as NSString).appendingPathComponent("blobs"), owner: owner)
        }
        let store = try await CapstanStore.open(
            databaseURL: configuration.databaseURL, dataDirectory: configuration.dataDirectory, blobs: blobs,
            logger: logger)
        do {
            try await store.migrate()
        } catch {
            try? await store.shutdown()
            throw error
        }
        let events = EventBus(store: store, logger: logger)
        let tokens = TokenService(store: store, logger: logger, events: events)
        let caches = CacheService(
            store: store, blobs: store.blobs, publicURL: configuration.effectivePublicURL,
            maxNarSize: configuration.maxNarSize, cacheHost: configuration.cacheHost.flatMap(CacheHost.init),
            uploadLimits: configuration.uploadLimits, lifecycle: configuration.cacheLifecycle, events: events,
            narRedirect: configuration.narRedirect, logger: logger)
        let hub = AgentHub(logger: logger)
        let webhooks = WebhookService(
            store: store, logger: logger, destinations: configuration.webhookDestinations)
        let deploy = DeployService(
            store: store, tokens: tokens, caches: caches, outbox: hub, events: events,
            publicURL: configuration.effectivePublicURL, logger: logger, webhooks: webhooks,
            logLimits: configuration.logLimits)
        let dispatcher = AgentDispatcher(deploy: deploy, outbox: hub, events: events, tokens: tokens, logger: logger)
        let library: MustacheLibrary
        let assets: DashboardAssets
        do {
            library = try DashboardTemplates.makeLibrary()
            assets = try DashboardAssets.load()
        } catch {
            try? await store.shutdown()
            throw error
        }
        return CapstanServer(
            configuration: configuration, store: store, tokens: tokens, caches: caches, deploy: deploy,
            webhooks: webhooks,
            dispatcher: dispatcher, hub: hub, events: events, dashboardLibrary: library, dashboardAssets: assets,
            logger: logger, metricsRegistry: metricsRegistry)
    }

    /// On first start: the default workspace and an admin token, printed once and kept in
    /// `<data-dir>/admin-token` (mode 0600). Returns the token when one was created.
    ///
    /// One recoverable step: the file is written before anything enters the database, and the step
    /// runs again at every start until the workspace has a valid admin token, so a start that failed
    /// half-way (a full disk, an unwritable file) never locks the operators out.
    public func bootstrap() async throws -> String? {
        if let workspace = try await store.workspace(named: configuration.defaultWorkspace),
            try await store.tokens(workspaceID: workspace.id).contains(where: {
                $0.kind == .admin && $0.revokedAt == nil
            })
        {
            return nil
        }
        let token = try await Self.issueAdminToken(
            store: store, tokens: tokens, configuration: configuration, label: "initial admin token")
        logger.notice(
            "created an admin token for workspace '\(configuration.defaultWorkspace)', saved in \(configuration.dataDirectory)/admin-token"
        )
        return token
    }

    /// A new admin token of the default workspace (created when missing), written to
    /// `<data-dir>/admin-token` first, then stored.
    static func issueAdminToken(
        store: CapstanStore, tokens: TokenService, configuration: ServerConfiguration, label: String
    ) async throws -> String {
        let secret = TokenSecret.generate(kind: .admin)
        try AdminTokenFile.write(secret, dataDirectory: configuration.dataDirectory)
        var workspace = try await store.workspace(named: configuration.defaultWorkspace)
        if workspace == nil { workspace = try await store.createWorkspace(name: configuration.defaultWorkspace) }
        guard let workspace else { throw ServiceError(.unavailable, "the default workspace could not be created") }
        _ = try await tokens.issue(
            kind: .admin, workspaceID: workspace.id, cacheID: nil, agentID: nil, label: label, secret: secret)
        return secret
    }

    /// `capstan admin-token reset`: a new admin token from the data directory, whether the server runs or not.
    public static func resetAdminToken(configuration: ServerConfiguration, logger: Logger) async throws -> String {
        try DataDirectory.prepare(configuration.dataDirectory)
        let store = try await CapstanStore.open(
            databaseURL: configuration.databaseURL, dataDirectory: configuration.dataDirectory, logger: logger)
        do {
            try await store.migrate()
            let token = try await issueAdminToken(
                store: store, tokens: TokenService(store: store, logger: logger), configuration: configuration,
                label: "admin token reset from the data directory")
            try await store.shutdown()
            return token
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    public func makeRouter() -> Router<CapstanRequestContext> {
        let router = Router(context: CapstanRequestContext.self)
        router.add(middleware: LogRequestsMiddleware(.debug))
        router.add(middleware: APIErrorMiddleware<CapstanRequestContext>())
        router.add(
            middleware: MetricsEndpoint<CapstanRequestContext>(
                registry: metricsRegistry, token: configuration.metricsToken, openWithoutToken: false))
        router.add(middleware: TokenAuthenticator<CapstanRequestContext>(tokens: tokens))
        HealthRoutes(store: store).register(on: router)
        OpenAPIRoutes().register(on: router)
        BinaryCacheRoutes(caches: caches).register(on: router)
        let workspaces = WorkspaceService(
            store: store, tokens: tokens, operatorWorkspace: configuration.defaultWorkspace, logger: logger)
        APIRoutes(caches: caches, tokens: tokens, workspaces: workspaces).register(on: router)
        DeployRoutes(deploy: deploy).register(on: router)
        RolloutRoutes(deploy: deploy).register(on: router)
        CachixDeployRoutes(deploy: deploy, session: agentSession).register(on: router)
        CachixCacheRoutes(caches: caches, publicURL: configuration.effectivePublicURL).register(on: router)
        if let cacheHost = caches.cacheHost {
            BinaryCacheRoutes(caches: caches).registerHostRouted(on: router, cacheHost: cacheHost)
        }
        AuditRoutes(audit: deploy.audit).register(on: router)
        WebhookRoutes(webhooks: webhooks).register(on: router)
        DashboardRoutes(
            deploy: deploy, caches: caches, tokens: tokens, assets: dashboardAssets,
            publicURL: configuration.effectivePublicURL, library: dashboardLibrary, logger: logger
        ).register(on: router)
        return router
    }

    public func makeWebSocketRouter() -> Router<AgentSocketContext> {
        let router = Router(context: AgentSocketContext.self)
        router.add(middleware: TokenAuthenticator<AgentSocketContext>(tokens: tokens))
        DeployRoutes(deploy: deploy).registerAgentChannel(on: router, session: agentSession)
        CachixDeployRoutes(deploy: deploy, session: agentSession).registerWebSockets(on: router)
        return router
    }

    /// The metrics listener's router: `/metrics` and `/health`, nothing else.
    func makeMetricsRouter() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(
            middleware: MetricsEndpoint<BasicRequestContext>(
                registry: metricsRegistry, token: configuration.metricsToken, openWithoutToken: true))
        router.get("health") { _, _ in "ok\n" }
        return router
    }

    var agentSession: AgentSession {
        AgentSession(
            deploy: deploy, dispatcher: dispatcher, hub: hub, reconcileDelay: configuration.agentReconcileDelay,
            pingInterval: configuration.agentPingInterval)
    }

    /// The `Server` header field of every response.
    static let serverName = "capstan"

    /// Serves until SIGTERM or SIGINT, then closes the database.
    public func run() async throws {
        HTTPLimits.raiseDescriptorLimit()
        let limits = configuration.httpLimits
        let connections = ConnectionRegistry(capacity: limits.effectiveMaxConnections, logger: logger)
        logger.info("client connections at most \(connections.capacity)")
        let app = Application(
            router: makeRouter(),
            server: .guardedHTTP1WebSocketUpgrade(
                webSocketRouter: makeWebSocketRouter(),
                // Pinged by `WebSocketKeepAlive` instead, every 20 s by default: an agent that misses
                // one is dropped, well within a minute.
                webSocket: .init(maxFrameSize: 1 << 20, autoPing: .disabled),
                limits: limits, registry: connections,
                narInfoAnswers: configuration.narInfoFastPath
                    ? NarInfoAnswers(caches: caches, tokens: tokens, serverName: Self.serverName, logger: logger) : nil,
                logger: logger),
            configuration: .init(
                address: .hostname(configuration.listenHost, port: configuration.listenPort),
                serverName: Self.serverName,
                availableConnectionsDelegate: RegistryAcceptance(registry: connections)),
            services: metricsServices() + [
                BackgroundService(name: "deploy events") { [events] in await events.run() },
                BackgroundService(name: "agent dispatcher") { await dispatcher.run() },
                BackgroundService(name: "agent heartbeat") { [hub, deploy] in
                    await hub.recordSeen(every: AgentSession.heartbeat, deploy: deploy)
                },
                BackgroundService(name: "rollouts") { [deploy, events, logger] in
                    await RolloutDriver(deploy: deploy, events: events, logger: logger).run()
                },
                BackgroundService(name: "cache events") { [caches] in await caches.followCacheEvents() },
                BackgroundService(name: "cache maintenance") { [caches] in await caches.runMaintenance() },
                BackgroundService(name: "upload sweeper") { [caches, logger] in
                    // At start (what a crash left), then as uploads expire.
                    while !Task.isCancelled {
                        do {
                            try await caches.sweepAbandonedUploads()
                        } catch {
                            logger.error("could not sweep abandoned uploads", metadata: ["error": "\(error)"])
                        }
                        try? await Task.sleep(for: .seconds(600))
                    }
                },
            ],
            onServerRunning: { [logger, configuration] channel in
                logger.notice(
                    "capstan listening",
                    metadata: [
                        "address": "\(channel.localAddress?.description ?? "?")",
                        "url": "\(configuration.effectivePublicURL)",
                    ])
            },
            logger: logger)
        // Signalled first on SIGTERM (services shut down in reverse order), so its grace runs
        // alongside the server's own shutdown.
        let closer = ConnectionCloser(
            registry: connections, grace: limits.shutdownGrace, endStreams: { [deploy] in deploy.endLogFollowers() },
            logger: logger)
        let services = ServiceGroup(
            configuration: .init(
                services: [app, closer], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await services.run()
        } catch {
            try? await store.shutdown()
            throw error
        }
        try await store.shutdown()
    }
}

extension CapstanServer {
    /// What `/metrics` reads: deployments counted in memory, and the metrics listener when configured.
    func metricsServices() -> [any Service] {
        let tally = DeploymentTally(store: store, events: events, logger: logger)
        var services: [any Service] = [BackgroundService(name: "deployment metrics") { await tally.run() }]
        if let address = configuration.metricsListen {
            services.append(
                Application(
                    router: makeMetricsRouter(),
                    configuration: .init(
                        address: .hostname(address.host, port: address.port), serverName: "capstan-metrics"),
                    onServerRunning: { [logger] channel in
                        logger.notice(
                            "metrics listening", metadata: ["address": "\(channel.localAddress?.description ?? "?")"])
                    },
                    logger: logger))
        }
        return services
    }
}

/// A task that lives as long as the server and stops on graceful shutdown.
struct BackgroundService: Service {
    let name: String
    let body: @Sendable () async -> Void

    init(name: String, _ body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.body = body
    }

    func run() async throws {
        await cancelWhenGracefulShutdown { await body() }
        // A task with nothing (left) to do still belongs to the running server.
        try? await gracefulShutdown()
    }
}

/// `<data-dir>/admin-token`: written to a temporary file (0600) and renamed, so it is whole or absent.
enum AdminTokenFile {
    static func write(_ secret: String, dataDirectory: String) throws {
        let path = (dataDirectory as NSString).appendingPathComponent("admin-token")
        let temporary = path + ".new"
        unlink(temporary)
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ServiceError(.unavailable, "cannot write \(temporary): \(String(cString: strerror(errno)))")
        }
        let line = secret + "\n"
        let written = line.withCString { Glibc.write(fd, $0, strlen($0)) }
        let synced = fsync(fd)
        close(fd)
        guard written == line.utf8.count, synced == 0, rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ServiceError(.unavailable, "cannot write \(path): \(reason)")
        }
    }
}
