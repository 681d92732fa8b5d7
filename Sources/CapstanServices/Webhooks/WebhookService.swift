import AsyncHTTPClient
import CapstanModel
import CapstanStorage
import Crypto
import Foundation
import Logging
import NIOCore

/// A workspace's webhooks: which URLs are told when a deployment finishes, and how each attempt went.
/// The replica that records a deployment's final status delivers, so each event is sent once.
public struct WebhookService: Sendable {
    static let finishedEvent = "deployment.finished"

    let store: CapstanStore
    let logger: Logger
    let audit: AuditLog
    /// Waits before retry n (1-based): base, 2·base, 4·base, … ; `attempts` tries in all.
    let retryBase: Duration
    let attempts: Int
    /// Which addresses deliveries may go to.
    let destinations: WebhookDestinationPolicy

    public init(
        store: CapstanStore, logger: Logger, retryBase: Duration = .seconds(1), attempts: Int = 6,
        destinations: WebhookDestinationPolicy = .init()
    ) {
        self.store = store
        self.logger = logger
        self.audit = AuditLog(store: store, logger: logger)
        self.retryBase = retryBase
        self.attempts = attempts
        self.destinations = destinations
    }

    public func add(_ request: CreateWebhookRequest, by principal: Principal) async throws -> WebhookInfo {
        try requireAdmin(principal, "adding a webhook")
        guard let url = URL(string: request.url), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else {
            throw ServiceError.badRequest("webhook URL '\(request.url)' must be an absolute http:// or https:// URL")
        }
        // Checked again at every delivery; refused now when it already points inside.
        do {
            _ = try await destinations.destination(host: host)
        } catch {
            switch error {
            case .notAllowed:
                throw ServiceError.badRequest(
                    "webhook URL '\(request.url)' points at a loopback, private, link-local or other internal "
                        + "address; webhooks are delivered to public addresses only (an operator may allow networks "
                        + "with webhook_allow_networks)")
            case .unresolvable:
                // The name may exist by the time a deployment finishes; each delivery resolves it again.
                break
            }
        }
        if let secret = request.secret, secret.isEmpty {
            throw ServiceError.badRequest(
                "a webhook secret must not be empty; leave --secret out for unsigned deliveries")
        }
        let record = WebhookRecord(
            id: UUID().uuidString.lowercased(), workspaceID: principal.workspaceID, url: request.url,
            secret: request.secret, createdAt: Date(), createdBy: principal.label)
        try await store.insertWebhook(record)
        await audit.record(.webhookAdded, by: principal, target: record.id, detail: record.url)
        return Self.info(record)
    }

    public func list(by principal: Principal) async throws -> [WebhookInfo] {
        try requireAdmin(principal, "listing webhooks")
        return try await store.webhooks(workspaceID: principal.workspaceID).map(Self.info)
    }

    public func remove(id: String, by principal: Principal) async throws {
        try requireAdmin(principal, "removing a webhook")
        guard try await store.deleteWebhook(id: id, workspaceID: principal.workspaceID) else {
            throw ServiceError.notFound("webhook \(id) does not exist in this workspace")
        }
        await audit.record(.webhookRemoved, by: principal, target: id)
    }

    public func deliveries(webhookID: String?, limit: Int, by principal: Principal) async throws -> [WebhookDelivery] {
        try requireAdmin(principal, "reading webhook deliveries")
        return try await store.webhookDeliveries(
            workspaceID: principal.workspaceID, webhookID: webhookID, limit: max(1, min(limit, 1000))
        ).map {
            WebhookDelivery(
                id: $0.id, webhookID: $0.webhookID, deploymentID: $0.deploymentID, event: $0.event,
                attempt: $0.attempt, time: $0.time, statusCode: $0.statusCode, error: $0.error, delivered: $0.delivered)
        }
    }

    /// The webhooks a finished deployment of the workspace goes to (read on `connection` when given);
    /// none when they cannot be read, which is logged: the deployment's outcome is recorded either way.
    func hooks(workspaceID: String, on connection: StoreConnection? = nil) async -> [WebhookRecord] {
        do {
            return try await store.webhooks(workspaceID: workspaceID, on: connection)
        } catch {
            logger.error("could not read webhooks", metadata: ["workspace": "\(workspaceID)", "error": "\(error)"])
            return []
        }
    }

    /// Sends the finished deployment to each of `hooks` (its workspace's), each in a task of its own that
    /// retries with exponential backoff until a 2xx answer or the last attempt. `describe` runs only
    /// when there are hooks: most workspaces have none, and a fleet's reports then read nothing more.
    func deploymentFinished(hooks: [WebhookRecord], describe: () async throws -> DeploymentInfo) async {
        guard !hooks.isEmpty else { return }
        let deployment: DeploymentInfo
        do {
            deployment = try await describe()
        } catch {
            logger.error("could not describe a finished deployment for webhooks", metadata: ["error": "\(error)"])
            return
        }
        let body: Data
        do {
            body = try Self.encoder.encode(WebhookPayload(event: Self.finishedEvent, deployment: deployment))
        } catch {
            logger.error("could not encode a webhook payload", metadata: ["error": "\(error)"])
            return
        }
        for hook in hooks {
            Task { await deliver(body, to: hook, deploymentID: deployment.id) }
        }
    }

    func deliver(_ body: Data, to hook: WebhookRecord, deploymentID: String) async {
        for attempt in 1...attempts {
            if attempt > 1 {
                try? await Task.sleep(for: retryBase * (1 << min(attempt - 2, 10)))
            }
            let result = await post(body, to: hook)
            do {
                try await store.insertWebhookDelivery(
                    WebhookDeliveryRecord(
                        webhookID: hook.id, deploymentID: deploymentID, event: Self.finishedEvent, attempt: attempt,
                        time: Date(), statusCode: result.statusCode, error: result.failure?.shown,
                        delivered: result.failure == nil))
            } catch {
                logger.error(
                    "could not record a webhook delivery", metadata: ["webhook": "\(hook.id)", "error": "\(error)"])
            }
            guard let failure = result.failure else { return }
            // The detail stays in the server's log, for its operator; the workspace sees `shown`.
            logger.warning(
                "webhook delivery failed",
                metadata: ["webhook": "\(hook.url)", "attempt": "\(attempt)", "error": "\(failure.detail)"])
            if failure.isFinal { return }
        }
    }

    /// Why an attempt failed: a short text the workspace's admins see, which says nothing about the
    /// network behind the server (whether a port is open, what an address answers), and the detail
    /// for the server's log.
    struct DeliveryFailure: Sendable {
        var shown: String
        var detail: String
        /// Trying again cannot help: the destination is not allowed.
        var isFinal = false

        static let notAllowed = "destination not allowed"
        static let unresolvable = "could not resolve the host"
        static let unreachable = "could not connect, or no answer in time"
    }

    /// One attempt: the host resolved and checked now, the request sent to the checked address,
    /// redirects not followed (a redirect could point anywhere).
    func post(_ body: Data, to hook: WebhookRecord) async -> (statusCode: Int?, failure: DeliveryFailure?) {
        guard let url = URL(string: hook.url), let host = url.host else {
            return (nil, DeliveryFailure(shown: "invalid URL", detail: "cannot parse \(hook.url)", isFinal: true))
        }
        let destination: WebhookDestinationPolicy.Destination
        do {
            destination = try await destinations.destination(host: host)
        } catch {
            switch error {
            case .notAllowed:
                let detail = "\(host) resolves to an internal address"
                return (nil, DeliveryFailure(shown: DeliveryFailure.notAllowed, detail: detail, isFinal: true))
            case .unresolvable:
                return (nil, DeliveryFailure(shown: DeliveryFailure.unresolvable, detail: "\(host) does not resolve"))
            }
        }
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(5), read: .seconds(10)))
        if IPAddress(host) == nil { configuration.dnsOverride = [host: destination.address.description] }
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let result = await send(body, to: hook, with: client)
        try? await client.shutdown().get()
        return result
    }

    private func send(
        _ body: Data, to hook: WebhookRecord, with client: HTTPClient
    ) async -> (statusCode: Int?, failure: DeliveryFailure?) {
        do {
            var request = HTTPClientRequest(url: hook.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "User-Agent", value: "capstan-webhook")
            request.headers.add(name: "X-Capstan-Event", value: Self.finishedEvent)
            if let secret = hook.secret {
                request.headers.add(
                    name: WebhookPayload.signatureHeader, value: Self.signature(of: body, secret: secret))
            }
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(15))
            // Drained so the connection closes cleanly; what the receiver says is not kept.
            _ = try? await response.body.collect(upTo: 64 << 10)
            let code = Int(response.status.code)
            guard (200..<300).contains(code) else {
                return (code, DeliveryFailure(shown: "HTTP \(code)", detail: "HTTP \(code)"))
            }
            return (code, nil)
        } catch {
            return (nil, DeliveryFailure(shown: DeliveryFailure.unreachable, detail: "\(error)"))
        }
    }

    /// `sha256=` and the hex HMAC-SHA256 of the body, keyed with the webhook's secret.
    public static func signature(of body: Data, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    static var encoder: JSONEncoder { .capstan }

    static func info(_ record: WebhookRecord) -> WebhookInfo {
        WebhookInfo(
            id: record.id, url: record.url, signed: record.secret != nil, createdAt: record.createdAt,
            createdBy: record.createdBy)
    }

    private func requireAdmin(_ principal: Principal, _ what: String) throws {
        try AccessPolicy.require(.manageWebhooks, by: principal)
    }
}
