import CapstanModel
import CapstanServer
import Foundation
import Logging
import NixCore
import Synchronization
import TestSupport
import Testing

/// The hand-over at connect and the dispatch of a creation can both find one pending deployment; a
/// connection gets its order once (an agent that ran it and got it again would open a finished
/// deployment's log and give up).
@Suite struct AgentHubOrderTests {
    @Test func aConnectionGetsEachOrderOnce() async throws {
        let hub = AgentHub(logger: Logger(label: "capstan.tests.hub"))
        let sent = Mutex<[ServerMessage]>([])
        let session = AgentHub.Session(
            id: UUID(), agentID: "web", tokenID: "t", send: { message in sent.withLock { $0.append(message) } },
            close: {})
        await hub.attach(session)
        let first = DeploymentOrder(id: "d1", index: 1, storePath: .named("a"), rollbackScript: nil)
        let second = DeploymentOrder(id: "d2", index: 2, storePath: .named("b"), rollbackScript: nil)
        async let one = hub.send([("web", .deploy(first))])
        async let two = hub.send([("web", .deploy(first))])
        #expect(await one + two == 1)
        #expect(await hub.send([("web", .cancel(id: "d1")), ("web", .deploy(second))]) == 2)
        #expect(sent.withLock { $0 }.filter { $0 == .deploy(first) }.count == 1)
        #expect(sent.withLock { $0 }.contains(.deploy(second)))
        // A new connection of the agent is handed its order again.
        await hub.detach(session)
        let again = AgentHub.Session(
            id: UUID(), agentID: "web", tokenID: "t", send: { message in sent.withLock { $0.append(message) } },
            close: {})
        await hub.attach(again)
        #expect(await hub.send([("web", .deploy(second))]) == 1)
    }
}
