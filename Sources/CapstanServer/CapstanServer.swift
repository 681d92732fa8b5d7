import CapstanModel
import CapstanStorage
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HummingbirdWebSocket
import ServiceLifecycle
import Logging
import Prometheus

/// The assembled server: storage opened and migrated, services wired under their routes.
public struct CapstanServer: Sendable {
    public let configuration: ServerConfiguration
    public let store: CapstanStore
    public let tokens: TokenService
    public let caches: CacheService
    public let deploy: DeployService
    public let webhooks: WebhookService
    let hub: AgentHub
    let events: EventBus
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
        try FileManager.default.createDirectory(
            atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let store = try await CapstanStore.open(
            databaseURL: configuration.databaseURL, dataDirectory: configuration.dataDirectory, logger: logger)
        do {
            try await store.migrate()
        } catch {
            try? await store.shutdown()
            throw error
        }
        let tokens = TokenService(store: store, logger: logger)
        let caches = CacheService(
            store: store, blobs: store.blobs, publicURL: configuration.effectivePublicURL,
            maxNarSize: configuration.maxNarSize, cacheHost: configuration.cacheHost.flatMap(CacheHost.init), logger: logger)
        let hub = AgentHub(logger: logger)
        let events = EventBus(store: store, logger: logger)
        let webhooks = WebhookService(store: store, logger: logger)
        let deploy = DeployService(
            store: store, tokens: tokens, caches: caches, hub: hub, events: events,
            publicURL: configuration.effectivePublicURL, logger: logger, webhooks: webhooks)
        return CapstanServer(
            configuration: configuration, store: store, tokens: tokens, caches: caches, deploy: deploy, webhooks: webhooks, hub: hub,
            events: events, logger: logger, metricsRegistry: metricsRegistry)
    }

    /// On first start: the default workspace and an admin token, printed once and kept in
    /// `<data-dir>/admin-token` (mode 0600). Returns the token when one was created.
    public func bootstrap() async throws -> String? {
        if try await store.workspace(named: configuration.defaultWorkspace) != nil { return nil }
        let workspace = try await store.createWorkspace(name: configuration.defaultWorkspace)
        let created = try await tokens.issue(
            kind: .admin, workspaceID: workspace.id, cacheID: nil, agentID: nil, label: "initial admin token")
        let path = (configuration.dataDirectory as NSString).appendingPathComponent("admin-token")
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw ServiceError(.unavailable, "cannot write \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let line = created.token + "\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
        fchmod(fd, 0o600)
        logger.notice("created workspace '\(workspace.name)' and an admin token, saved in \(path)")
        return created.token
    }

    public func makeRouter() -> Router<CapstanRequestContext> {
        let router = Router(context: CapstanRequestContext.self)
        router.add(middleware: LogRequestsMiddleware(.debug))
        let auth = Authenticator(tokens: tokens)
        HealthRoutes(store: store).register(on: router)
        MetricsRoutes(registry: metricsRegistry, store: store, hub: hub).register(on: router)
        BinaryCacheRoutes(caches: caches, auth: auth).register(on: router)
        let workspaces = WorkspaceService(
            store: store, tokens: tokens, operatorWorkspace: configuration.defaultWorkspace, logger: logger)
        APIRoutes(caches: caches, tokens: tokens, auth: auth, workspaces: workspaces).register(on: router)
        DeployRoutes(deploy: deploy, auth: auth).register(on: router)
        CachixDeployRoutes(deploy: deploy, hub: hub, auth: auth).register(on: router)
        CachixCacheRoutes(caches: caches, auth: auth, publicURL: configuration.effectivePublicURL).register(on: router)
        if let cacheHost = caches.cacheHost {
            BinaryCacheRoutes(caches: caches, auth: auth).registerHostRouted(on: router, cacheHost: cacheHost)
        }
        AuditRoutes(audit: deploy.audit, auth: auth).register(on: router)
        WebhookRoutes(webhooks: webhooks, auth: auth).register(on: router)
        DashboardRoutes(
            deploy: deploy, caches: caches, tokens: tokens, auth: auth, publicURL: configuration.effectivePublicURL,
            // The templates are constants of this program, parsed by a unit test too: a failure is a bug.
            library: try! DashboardTemplates.makeLibrary(), logger: logger
        ).register(on: router)
        return router
    }

    public func makeWebSocketRouter() -> Router<BasicWebSocketRequestContext> {
        let router = Router(context: BasicWebSocketRequestContext.self)
        let channel = AgentChannel(deploy: deploy, hub: hub, reconcileDelay: configuration.agentReconcileDelay)
        let auth = Authenticator(tokens: tokens)
        DeployRoutes(deploy: deploy, auth: auth).registerAgentChannel(on: router, channel: channel)
        CachixDeployRoutes(deploy: deploy, hub: hub, auth: auth).registerWebSockets(on: router)
        return router
    }

    /// Serves until SIGTERM or SIGINT, then closes the database.
    public func run() async throws {
        let dispatcher = AgentDispatcher(deploy: deploy, hub: hub, events: events, logger: logger)
        let app = Application(
            router: makeRouter(),
            server: .http1WebSocketUpgrade(
                webSocketRouter: makeWebSocketRouter(),
                configuration: .init(
                    http1: .init(),
                    // Pings every 20 s; an agent that misses one is dropped, well within a minute.
                    ws: .init(maxFrameSize: 1 << 20, autoPing: .enabled(timePeriod: .seconds(20))))),
            configuration: .init(
                address: .hostname(configuration.listenHost, port: configuration.listenPort), serverName: "capstan"),
            services: [
                BackgroundService(name: "deploy events") { [events] in await events.run() },
                BackgroundService(name: "agent dispatcher") { await dispatcher.run() },
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
        do {
            try await app.runService()
        } catch {
            try? await store.shutdown()
            throw error
        }
        try await store.shutdown()
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
