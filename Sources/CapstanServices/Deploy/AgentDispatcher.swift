import CapstanModel
import Logging

/// The one path by which orders reach agents: deployments created or cancelled on any replica
/// (through the event bus), and an agent's newest pending deployment when it connects or finishes one.
public struct AgentDispatcher: Sendable {
    let deploy: DeployService
    let outbox: any AgentOutbox
    let events: EventBus
    let logger: Logger
    let tokens: TokenService?

    public init(
        deploy: DeployService, outbox: any AgentOutbox, events: EventBus, tokens: TokenService? = nil, logger: Logger
    ) {
        self.deploy = deploy
        self.outbox = outbox
        self.events = events
        self.tokens = tokens
        self.logger = logger
    }

    public func run() async {
        for await batch in events.batches() {
            await dispatch(batch)
        }
    }

    /// Sends the agent its newest pending deployment, if it has one and is connected here.
    public func handOver(to agentID: String) async {
        do {
            guard let order = try await deploy.pendingOrders(forAgentIDs: [agentID])[agentID] else { return }
            await send(order, to: agentID)
        } catch {
            logger.error(
                "could not hand an agent its pending deployment",
                metadata: ["agent": "\(agentID)", "error": "\(error)"])
        }
    }

    /// Sends the agent an order already read (the next one a report returned), if it is connected here.
    public func send(_ order: DeploymentOrder, to agentID: String) async {
        await outbox.send([(agentID, .deploy(order))])
    }

    /// Runs of creations are looked up and sent together (a deploy to many agents publishes one per
    /// agent); a cancellation is sent in its place in the order.
    public func dispatch(_ batch: [DeployEvent]) async {
        var created: [(agentID: String, deploymentID: String)] = []
        for event in batch {
            switch event {
            case .deploymentCreated(let agentID, let deploymentID):
                created.append((agentID, deploymentID))
            case .deploymentCancelled(let agentID, let deploymentID):
                await sendCreated(created)
                created.removeAll()
                await outbox.send([(agentID, .cancel(id: deploymentID))])
            case .tokenRevoked(let tokenID):
                tokens?.revoked(tokenID: tokenID)
                let closed = await outbox.close(tokenID: tokenID)
                if closed > 0 {
                    logger.notice(
                        "closed connections of a revoked token",
                        metadata: ["token": "\(tokenID)", "count": "\(closed)"])
                }
            case .deploymentChanged, .logAppended, .cacheChanged, .rolloutChanged:
                continue
            }
        }
        await sendCreated(created)
    }

    /// Sends each created deployment whose agent is connected here and which is still that agent's
    /// newest pending one (a later deployment or a cancellation may have overtaken it).
    private func sendCreated(_ created: [(agentID: String, deploymentID: String)]) async {
        guard !created.isEmpty else { return }
        let connected = await outbox.connected(among: created.map(\.agentID))
        guard !connected.isEmpty else { return }
        do {
            let orders = try await deploy.pendingOrders(forAgentIDs: Array(connected))
            var messages: [(agentID: String, message: ServerMessage)] = []
            for (agentID, deploymentID) in created {
                guard let order = orders[agentID], order.id == deploymentID else { continue }
                messages.append((agentID, .deploy(order)))
            }
            await outbox.send(messages)
        } catch {
            logger.error(
                "could not dispatch deploy events",
                metadata: ["deployments": "\(created.count)", "error": "\(error)"])
        }
    }
}

extension AgentDispatcher {
    /// Tells an agent to stop a deployment it reported as started but that no longer runs.
    public func cancel(deploymentID: String, agentID: String) async {
        await outbox.send([(agentID, .cancel(id: deploymentID))])
    }
}
