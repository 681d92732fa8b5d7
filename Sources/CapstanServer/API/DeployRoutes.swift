import CapstanModel
import CapstanServices
import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// Capstan's deploy API: agents, activation, deployments and their logs.
struct DeployRoutes: Sendable {
    let deploy: DeployService

    func register(on router: Router<CapstanRequestContext>) {
        let api = router.group("api/v1")
        api.get("agents") { request, context in
            try await deploy.agents(by: context.requirePrincipal())
        }
        api.post("agents") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: CreateAgentRequest.self, context: context)
            return EditedResponse(status: .created, response: try await deploy.createAgent(body, by: principal))
        }
        api.post("agents/:name/rollback") { request, context in
            try await deploy.rollback(
                agentName: context.parameters.require("name"), by: context.requirePrincipal())
        }
        api.post("deploy/activate") { request, context in
            let principal = try context.requirePrincipal()
            let spec = try await DeploySpec(request, context: context)
            let filter = request.uri.queryParameters.getAll("agent").map { String($0) }
            return try await deploy.activate(
                spec, agentFilter: filter.isEmpty ? nil : Set(filter), by: principal)
        }
        api.post("deploy/diff") { request, context in
            let principal = try context.requirePrincipal()
            let spec = try await DeploySpec(request, context: context)
            let filter = request.uri.queryParameters.getAll("agent").map { String($0) }
            return try await deploy.preview(spec, agentFilter: filter.isEmpty ? nil : Set(filter), by: principal)
        }
        api.get("deployments") { request, context in
            let query = request.uri.queryParameters
            var status: DeploymentStatus?
            if let raw = query["status"] {
                guard let parsed = DeploymentStatus(rawValue: String(raw)) else {
                    throw ServiceError.badRequest(
                        "status '\(raw)' is not one of \(DeploymentStatus.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                status = parsed
            }
            return try await deploy.deployments(
                agentName: query["agent"].map(String.init), status: status,
                limit: query["limit"].flatMap { Int($0) } ?? 100,
                by: context.requirePrincipal())
        }
        api.get("deployments/:id") { request, context in
            try await deploy.deployment(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
        api.post("deployments/:id/cancel") { request, context in
            try await deploy.cancel(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
        api.post("deployments/:id/retry") { request, context in
            try await deploy.retry(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
        api.get("deployments/:id/log") { request, context in
            // `after=N`: only lines after the N-th (a page already shows the first N).
            let items = try await deploy.followLog(
                id: context.parameters.require("id"),
                after: request.uri.queryParameters["after"].flatMap { Int($0) } ?? 0, by: context.requirePrincipal())
            let encoder = JSONEncoder.capstan
            let body = ResponseBody { writer in
                for try await item in items {
                    var buffer = ByteBuffer(bytes: try encoder.encode(item))
                    buffer.writeString("\n")
                    try await writer.write(buffer)
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "application/x-ndjson"], body: body)
        }
    }

    /// The agent channel, on the WebSocket router.
    func registerAgentChannel(on router: Router<AgentSocketContext>, session: AgentSession) {
        router.ws(
            "api/v1/agent/connect",
            shouldUpgrade: { _, context in context.identity == nil ? .dontUpgrade : .upgrade([:]) },
            onUpgrade: { inbound, outbound, context in
                try await session.keepAlive(context)
                guard let principal = context.requestContext.identity else { return }
                try await session.run(
                    principal: principal, hello: nil, codec: CapstanAgentCodec(), inbound: inbound, outbound: outbound,
                    logger: context.logger)
            })
    }
}

extension AgentInfo: ResponseEncodable {}
extension CreatedAgent: ResponseEncodable {}
extension ActivateResponse: ResponseEncodable {}
extension DeployPreview: ResponseEncodable {}
extension DeploymentInfo: ResponseEncodable {}

extension DeploySpec {
    /// The deploy.json a request carries; a malformed one is a 400 naming the field at fault.
    init(_ request: Request, context: CapstanRequestContext) async throws {
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        do {
            self = try DeploySpec.parse(Data(body.readableBytesView))
        } catch {
            throw ServiceError.badRequest(error.description)
        }
    }
}
