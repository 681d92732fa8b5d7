import CapstanServer
import Logging
import Synchronization
import Testing

/// A socket is registered for revocation for exactly its handler's run: a revocation meanwhile
/// closes it, and once the handler has returned or thrown nothing of it is left to close.
@Suite struct AgentHubTrackingTests {
    struct HandlerFailed: Error {}

    @Test func aSocketIsTrackedForExactlyItsHandlersRun() async throws {
        let hub = AgentHub(logger: Logger(label: "capstan.tests.hub"))
        let closes = Mutex(0)
        try await hub.tracking(tokenID: "t1", close: { closes.withLock { $0 += 1 } }) {
            #expect(await hub.trackedSocketCount == 1)
            #expect(await hub.close(tokenID: "t1") == 1)
            #expect(await hub.close(tokenID: "other") == 0)
        }
        #expect(closes.withLock { $0 } == 1)
        // Untracked when the handler returned: a later revocation finds nothing, at once.
        #expect(await hub.trackedSocketCount == 0)
        #expect(await hub.close(tokenID: "t1") == 0)

        await #expect(throws: HandlerFailed.self) {
            try await hub.tracking(tokenID: "t2", close: {}) { throw HandlerFailed() }
        }
        #expect(await hub.trackedSocketCount == 0)
        #expect(await hub.close(tokenID: "t2") == 0)
    }

    @Test func aCancelledHandlerIsUntrackedBeforeItsTaskEnds() async throws {
        let hub = AgentHub(logger: Logger(label: "capstan.tests.hub"))
        let handler = Task {
            try await hub.tracking(tokenID: "t3", close: {}) {
                try await Task.sleep(for: .seconds(60))
            }
        }
        while await hub.trackedSocketCount == 0 { await Task.yield() }
        handler.cancel()
        _ = await handler.result
        #expect(await hub.trackedSocketCount == 0)
    }
}
