import CapstanClient
import CapstanModel
import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging

/// The agent: keeps a WebSocket to the server open (reconnecting forever), hands deployment orders
/// to the `DeploymentSupervisor` and reports what the runners did.
public struct AgentConnection: Sendable {
    public let configuration: AgentConfiguration
    let logger: Logger
    /// How often runners are checked and new log lines forwarded.
    var pollInterval: Duration = .milliseconds(500)

    public init(configuration: AgentConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until `shutdown` is triggered; then closes the socket with 1000 and returns.
    /// A deployment that is running carries on in its own process.
    public func run(until shutdown: ShutdownSignal) async throws {
        let url = try configuration.connectURL()
        let supervisor = try DeploymentSupervisor(configuration: configuration, logger: logger)
        logger.info(
            "agent \(configuration.name) (\(configuration.system)) starting; server \(url), profile \(configuration.profilePath)"
        )
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await supervise(supervisor, until: shutdown) }
            group.addTask { await connectForever(url: url, supervisor: supervisor, until: shutdown) }
        }
        logger.info("agent stopped")
    }

    /// Runner bookkeeping goes on while the server is unreachable: a waiting order still starts.
    private func supervise(_ supervisor: DeploymentSupervisor, until shutdown: ShutdownSignal) async {
        while !shutdown.isTriggered {
            await supervisor.tick()
            if await shutdown.sleep(for: pollInterval) { return }
        }
    }

    private func connectForever(url: String, supervisor: DeploymentSupervisor, until shutdown: ShutdownSignal) async {
        var backoff = ReconnectBackoff()
        while !shutdown.isTriggered {
            let started = ContinuousClock.now
            do {
                let close = try await connectOnce(url: url, supervisor: supervisor, shutdown: shutdown)
                if shutdown.isTriggered { return }
                let code = close.map { "\($0.closeCode)" } ?? "no close frame"
                logger.warning("connection to \(url) closed (\(code)\(close?.reason.map { ": \($0)" } ?? ""))")
            } catch {
                if shutdown.isTriggered { return }
                logger.warning("connection to \(url) failed: \(describe(error))")
            }
            backoff.connectionEnded(after: ContinuousClock.now - started)
            let delay = backoff.nextDelay()
            logger.info(
                "reconnecting in \(delay.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1))))")
            if await shutdown.sleep(for: delay) { return }
        }
    }

    private func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("webSocketUpgradeFailed") {
            return "the server refused the WebSocket upgrade (\(text)); check CAPSTAN_AGENT_TOKEN and that "
                + "the server knows an agent named \(configuration.name)"
        }
        return text
    }

    private func connectOnce(url: String, supervisor: DeploymentSupervisor, shutdown: ShutdownSignal) async throws
        -> WebSocketCloseFrame?
    {
        var headers = HTTPFields()
        headers[.authorization] = "Bearer \(configuration.token)"
        let webSocketConfiguration = WebSocketClientConfiguration(
            maxFrameSize: 1 << 20, additionalHeaders: headers, closeTimeout: .seconds(5),
            // A ping every interval; no pong by the next one closes the socket, so a dead server
            // is noticed within two intervals.
            autoPing: .enabled(timePeriod: configuration.pingInterval))
        let client = WebSocketClient(url: url, configuration: webSocketConfiguration, logger: logger) {
            inbound, outbound, _ in
            try await session(inbound: inbound, outbound: outbound, supervisor: supervisor, shutdown: shutdown)
        }
        return try await client.run()
    }

    private func session(
        inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, supervisor: DeploymentSupervisor,
        shutdown: ShutdownSignal
    ) async throws {
        let hello = AgentHello(
            name: configuration.name, version: configuration.version, system: configuration.system,
            currentStorePath: await supervisor.currentStorePath,
            runningDeployment: await supervisor.runningDeployment(),
            needsReboot: await supervisor.statusForHello().needsReboot)
        try await outbound.writeTextMessage(try Self.encode(.hello(hello)))
        logger.debug(
            "sent hello: running \(hello.runningDeployment ?? "nothing"), current \(hello.currentStorePath?.path ?? "none")"
        )
        let (welcomed, welcome) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    guard case .text(let text) = message else { continue }
                    await handle(text, supervisor: supervisor, welcome: welcome)
                }
                logger.debug("server closed the stream")
            }
            group.addTask {
                for await _ in welcomed { break }
                while true {
                    for item in await supervisor.outgoing() {
                        try await outbound.writeTextMessage(try Self.encode(item.message))
                        await supervisor.sent(item)
                    }
                    try await Task.sleep(for: pollInterval)
                }
            }
            group.addTask { await shutdown.wait() }
            // Whichever ends first (server gone, shutdown, a failed write) ends the session.
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    private func handle(_ text: String, supervisor: DeploymentSupervisor, welcome: AsyncStream<Void>.Continuation)
        async
    {
        let message: ServerMessage
        do {
            message = try JSONDecoder.capstan.decode(ServerMessage.self, from: Data(text.utf8))
        } catch {
            logger.warning("ignoring a server message this agent does not understand: \(error)")
            return
        }
        switch message {
        case .welcome(let agentID, let cache):
            logger.info(
                "connected as agent \(agentID); cache \(cache.map { "\($0.name) at \($0.url)" } ?? "none")")
            await supervisor.setCache(cache)
            welcome.yield()
        case .deploy(let order):
            logger.info("deployment \(order.id) (#\(order.index)) ordered: \(order.storePath)")
            await supervisor.receive(order)
        case .cancel(let id):
            await supervisor.cancel(id: id)
        }
    }

    static func encode(_ message: AgentMessage) throws -> String {
        String(decoding: try JSONEncoder.capstan.encode(message), as: UTF8.self)
    }
}
