import CapstanModel
import CapstanServices
import CapstanStorage
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore

/// The cachix deploy API over `DeployService`: activation and deployment status over HTTP, and
/// the agent's control socket, its per-deployment socket and the log sockets over WebSocket.
struct CachixDeployRoutes: Sendable {
    let deploy: DeployService
    let session: AgentSession

    func register(on router: Router<CapstanRequestContext>) {
        router.post("api/v2/deploy/activate") { request, context in
            let principal = try context.requirePrincipal()
            let spec = try await DeploySpec(request, context: context)
            let created = try await deploy.activate(spec, by: principal)
            return try json(
                CachixWire.ActivateResponse(agents: created.agents.mapValues { .init(id: $0.id, url: $0.url) }))
        }
        router.get("api/v1/deploy/deployment/:id") { request, context in
            let info = try await deploy.deployment(
                id: context.parameters.require("id"), by: context.requirePrincipal())
            return try json(
                CachixWire.Deployment(
                    id: info.id, index: info.index, createdOn: CachixWire.time(info.createdOn),
                    startedOn: info.startedOn.map(CachixWire.time), finishedOn: info.finishedOn.map(CachixWire.time),
                    storePath: info.storePath, closureSize: info.closureSize, status: info.status.rawValue))
        }
    }

    func registerWebSockets(on router: Router<AgentSocketContext>) {
        router.ws(
            "ws",
            shouldUpgrade: { request, context in
                context.identity == nil ? .dontUpgrade : .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                try await session.keepAlive(context)
                guard let principal = context.requestContext.identity else { return }
                let hello = AgentHello(
                    name: Self.header("name", context.request) ?? "",
                    version: Self.header("version", context.request) ?? "",
                    system: Self.header("system", context.request) ?? "", currentStorePath: nil, runningDeployment: nil)
                try await session.run(
                    principal: principal, hello: hello, codec: CachixAgentCodec(), inbound: inbound, outbound: outbound,
                    logger: context.logger)
            })
        router.ws(
            "ws-deployment",
            shouldUpgrade: { request, context in
                guard let principal = context.identity,
                    (try? await deploy.agent(authenticatedAs: principal)) != nil
                else { return .dontUpgrade }
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                try await session.keepAlive(context)
                let principal = try context.requestContext.requirePrincipal()
                let agent = try await deploy.agent(authenticatedAs: principal)
                try await session.hub.tracking(principal, outbound) {
                    try await deploymentEvents(agent: agent, inbound: inbound, logger: context.logger)
                }
            })
        router.ws(
            "api/v1/deploy/log/:id",
            shouldUpgrade: { request, context in
                guard let id = context.parameters.get("id"), let principal = context.identity
                else { return .dontUpgrade }
                if request.uri.queryParameters["view"] == "true" {
                    return (try? await deploy.deployment(id: id, by: principal)) == nil ? .dontUpgrade : .upgrade([:])
                }
                // An agent may write only to its own deployments' logs.
                guard let agent = try? await deploy.agent(authenticatedAs: principal),
                    (try? await deploy.agentLogged(agent, deploymentID: id, lines: [])) != nil
                else { return .dontUpgrade }
                return .upgrade([:])
            },
            onUpgrade: { inbound, outbound, context in
                try await session.keepAlive(context)
                let id = try context.requestContext.parameters.require("id")
                let principal = try context.requestContext.requirePrincipal()
                try await session.hub.tracking(principal, outbound) {
                    if context.request.uri.queryParameters["view"] == "true" {
                        try await viewLog(id: id, principal: principal, inbound: inbound, outbound: outbound)
                    } else {
                        let agent = try await deploy.agent(authenticatedAs: principal)
                        try await writeLog(id: id, agent: agent, inbound: inbound, logger: context.logger)
                    }
                }
            })
    }

    /// `DeploymentStarted` (before and after the download) and `DeploymentFinished`, from the
    /// process an agent runs each deployment in.
    private func deploymentEvents(agent: AgentRecord, inbound: WebSocketInboundStream, logger: Logger) async throws {
        let decoder = JSONDecoder()
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message,
                let envelope = try? decoder.decode(
                    CachixWire.Envelope<CachixWire.AgentCommand>.self, from: Data(text.utf8))
            else {
                logger.warning("ignoring an unreadable deployment event", metadata: ["agent": "\(agent.name)"])
                continue
            }
            do {
                try await deploy.reportTurns.run {
                    switch envelope.command {
                    case .deploymentStarted(let id, let closureSize):
                        if try await !deploy.agentStarted(agent, deploymentID: id, closureSize: closureSize) {
                            logger.info(
                                "agent started a deployment that no longer runs", metadata: ["deployment": "\(id)"])
                        }
                    case .deploymentFinished(let id, let hasSucceeded):
                        // The next deployment may already be waiting.
                        if let next = try await deploy.agentFinished(agent, deploymentID: id, succeeded: hasSucceeded) {
                            await session.dispatcher.send(next, to: agent.id)
                        }
                    case .other(let tag):
                        logger.debug("ignoring deployment event", metadata: ["tag": "\(tag)"])
                    }
                }
            } catch let error as ServiceError {
                logger.warning("deployment event refused", metadata: ["agent": "\(agent.name)", "error": "\(error)"])
            }
        }
    }

    private func writeLog(id: String, agent: AgentRecord, inbound: WebSocketInboundStream, logger: Logger) async throws
    {
        let decoder = JSONDecoder()
        for try await message in inbound.messages(maxSize: 1 << 20) {
            guard case .text(let text) = message else { continue }
            guard let frame = try? decoder.decode(CachixWire.LogFrame.self, from: Data(text.utf8)) else {
                logger.warning("ignoring an unreadable log frame", metadata: ["deployment": "\(id)"])
                continue
            }
            try await deploy.agentLogged(
                agent, deploymentID: id, lines: [LogLine(time: CachixWire.date(frame.time) ?? Date(), line: frame.line)]
            )
        }
    }

    /// Everything logged so far, then new lines as they come, until the deployment has finished.
    private func viewLog(
        id: String, principal: Principal, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter
    ) async throws {
        let items = try await deploy.followLog(id: id, by: principal)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await item in items {
                    guard let line = item.line else { continue }
                    try await outbound.write(
                        .text(
                            try CachixWire.text(CachixWire.LogFrame(line: line.line, time: CachixWire.time(line.time))))
                    )
                }
                try await outbound.close(.normalClosure, reason: nil)
            }
            // The viewer sends nothing; the stream ends when either side closes.
            for try await _ in inbound {}
            group.cancelAll()
        }
    }

    static func header(_ name: String, _ request: Request) -> String? {
        request.headers.first { $0.name.canonicalName == name.lowercased() }?.value
    }

    private func json<Value: Encodable>(_ value: Value) throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: try CachixWire.text(value))))
    }
}
