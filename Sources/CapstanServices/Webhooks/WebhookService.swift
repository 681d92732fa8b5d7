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

    public init(store: CapstanStore, logger: Logger, retryBase: Duration = .seconds(1), attempts: Int = 6) {
        self.store = store
        self.logger = logger
        self.audit = AuditLog(store: store, logger: logger)
        self.retryBase = retryBase
        self.attempts = attempts
    }

    public func add(_ request: CreateWebhookRequest, by principal: Principal) async throws -> WebhookInfo {
        try requireAdmin(principal, "adding a webhook")
        guard let url = URL(string: request.url), let scheme = url.scheme?.lowercased(),
            scheme == "http" || scheme == "https", url.host != nil
        else {
            throw ServiceError.badRequest("webhook URL '\(request.url)' must be an absolute http:// or https:// URL")
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

    /// Sends the finished deployment to every webhook of its workspace, each in a task of its own that
    /// retries with exponential backoff until a 2xx answer or the last attempt.
    func deploymentFinished(_ deployment: DeploymentInfo, workspaceID: String) async {
        let hooks: [WebhookRecord]
        do {
            hooks = try await store.webhooks(workspaceID: workspaceID)
        } catch {
            logger.error("could not read webhooks", metadata: ["workspace": "\(workspaceID)", "error": "\(error)"])
            return
        }
        guard !hooks.isEmpty else { return }
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
            var statusCode: Int?
            var failure: String?
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
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                statusCode = Int(response.status.code)
                // Drained so the connection can be reused; what the receiver says is not kept.
                _ = try? await response.body.collect(upTo: 64 << 10)
                if !(200..<300).contains(response.status.code) { failure = "HTTP \(response.status.code)" }
            } catch {
                failure = "\(error)"
            }
            let delivered = failure == nil
            do {
                try await store.insertWebhookDelivery(
                    WebhookDeliveryRecord(
                        webhookID: hook.id, deploymentID: deploymentID, event: Self.finishedEvent, attempt: attempt,
                        time: Date(), statusCode: statusCode, error: failure, delivered: delivered))
            } catch {
                logger.error(
                    "could not record a webhook delivery", metadata: ["webhook": "\(hook.id)", "error": "\(error)"])
            }
            if delivered { return }
            logger.warning(
                "webhook delivery failed",
                metadata: ["webhook": "\(hook.url)", "attempt": "\(attempt)", "error": "\(failure ?? "")"])
        }
    }

    /// `sha256=` and the hex HMAC-SHA256 of the body, keyed with the webhook's secret.
    public static func signature(of body: Data, secret: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    static var encoder: JSONEncoder { .capstanSorted }

    static func info(_ record: WebhookRecord) -> WebhookInfo {
        WebhookInfo(
            id: record.id, url: record.url, signed: record.secret != nil, createdAt: record.createdAt,
            createdBy: record.createdBy)
    }

    private func requireAdmin(_ principal: Principal, _ what: String) throws {
        try AccessPolicy.require(.manageWebhooks, by: principal)
    }
}
