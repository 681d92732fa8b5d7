import AsyncHTTPClient
import CapstanModel
import Foundation
import NIOCore

extension CapstanAPIClient {
    public func createAgent(_ request: CreateAgentRequest) async throws -> CreatedAgent {
        try await send(.POST, "/api/v1/agents", body: request)
    }

    /// The workspace's audit log, newest first.
    public func audit(limit: Int = 100) async throws -> [AuditEvent] {
        try await send(.GET, "/api/v1/audit?limit=\(limit)")
    }

    public func addWebhook(_ request: CreateWebhookRequest) async throws -> WebhookInfo {
        try await send(.POST, "/api/v1/webhooks", body: request)
    }

    public func webhooks() async throws -> [WebhookInfo] {
        try await send(.GET, "/api/v1/webhooks")
    }

    public func removeWebhook(id: String) async throws {
        _ = try await executeRaw(makeRequest(.DELETE, "/api/v1/webhooks/\(id)"), timeout: .seconds(30))
    }

    public func webhookDeliveries(webhook: String? = nil, limit: Int = 100) async throws -> [WebhookDelivery] {
        try await send(.GET, "/api/v1/webhooks/deliveries?limit=\(limit)" + (webhook.map { "&webhook=\($0)" } ?? ""))
    }

    public func agents() async throws -> [AgentInfo] {
        try await send(.GET, "/api/v1/agents")
    }

    /// Sends a deploy.json as it is; the server checks it.
    public func activate(deployJSON: Data, agents: [String] = []) async throws -> ActivateResponse {
        try await postDeployJSON("/api/v1/deploy/activate", deployJSON, agents: agents)
    }

    /// What activating the deploy.json would change on each agent; nothing is created.
    public func preview(deployJSON: Data, agents: [String] = []) async throws -> DeployPreview {
        try await postDeployJSON("/api/v1/deploy/diff", deployJSON, agents: agents)
    }

    private func postDeployJSON<Answer: Decodable>(_ route: String, _ deployJSON: Data, agents: [String])
        async throws -> Answer
    {
        var path = route
        if !agents.isEmpty {
            path +=
                "?"
                + agents.map { "agent=\($0.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0)" }
                .joined(separator: "&")
        }
        var request = makeRequest(.POST, path)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: deployJSON))
        return try await execute(request, timeout: .seconds(60))
    }

    public func deployment(id: String) async throws -> DeploymentInfo {
        try await send(.GET, "/api/v1/deployments/\(id)")
    }

    public func deployments(agent: String? = nil, status: DeploymentStatus? = nil, limit: Int = 100) async throws
        -> [DeploymentInfo]
    {
        var query = ["limit=\(limit)"]
        if let agent { query.append("agent=\(agent)") }
        if let status { query.append("status=\(status.rawValue)") }
        return try await send(.GET, "/api/v1/deployments?" + query.joined(separator: "&"))
    }

    public func cancelDeployment(id: String) async throws -> DeploymentInfo {
        try await send(.POST, "/api/v1/deployments/\(id)/cancel", body: [String: String]())
    }

    public func retryDeployment(id: String) async throws -> DeploymentInfo {
        try await send(.POST, "/api/v1/deployments/\(id)/retry", body: [String: String]())
    }

    public func rollback(agent: String) async throws -> DeploymentInfo {
        try await send(.POST, "/api/v1/agents/\(agent)/rollback", body: [String: String]())
    }

    /// A deployment's log: everything so far, then new lines, then an item with the final deployment.
    public func followLog(id: String) -> AsyncThrowingStream<LogStreamItem, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    let request = makeRequest(.GET, "/api/v1/deployments/\(id)/log")
                    let response = try await http.execute(request, timeout: .hours(24))
                    guard response.status.code == 200 else {
                        throw await ClientError(answer: response, url: request.url)
                    }
                    for try await item in response.body.jsonLines(of: LogStreamItem.self, url: request.url) {
                        continuation.yield(item)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

extension CapstanAPIClient {
    public func rollout(id: String) async throws -> RolloutInfo {
        try await send(.GET, "/api/v1/rollouts/\(id)")
    }

    /// `pause`, `resume` or `abort`.
    public func changeRollout(id: String, action: String) async throws -> RolloutInfo {
        try await send(.POST, "/api/v1/rollouts/\(id)/\(action)", body: [String: String]())
    }
}
