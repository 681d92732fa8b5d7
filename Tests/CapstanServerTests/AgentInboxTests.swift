import CapstanModel
import Foundation
import Testing

@testable import CapstanServer

/// The inbox asks for a handler only when messages wait and none runs, and the handler ends once the
/// inbox is empty: an idle agent holds no handler task, and each burst starts on a fresh task stack.
@Suite struct AgentInboxTests {
    private func log(_ n: Int) -> AgentMessage {
        .log(id: "d", lines: [LogLine(time: Date(timeIntervalSince1970: Double(n)), line: "line \(n)")])
    }

    @Test func theFirstMessageAsksForAHandlerAndTheNextOnesJoinIt() {
        let inbox = AgentInbox()
        #expect(inbox.enqueue(log(1), bytes: 10) == .queued(startHandler: true, full: false))
        #expect(inbox.enqueue(log(2), bytes: 10) == .queued(startHandler: false, full: false))
        #expect(inbox.nextToHandle() == log(1))
        #expect(inbox.enqueue(log(3), bytes: 10) == .queued(startHandler: false, full: false))
        #expect(inbox.nextToHandle() == log(2))
        #expect(inbox.nextToHandle() == log(3))
        // Empty: the handler ends, and the next message asks for a new one.
        #expect(inbox.nextToHandle() == nil)
        #expect(inbox.enqueue(log(4), bytes: 10) == .queued(startHandler: true, full: false))
        #expect(inbox.nextToHandle() == log(4))
    }

    @Test func aFullInboxMakesTheReaderWaitUntilTheHandlerTakesAMessage() async {
        let inbox = AgentInbox()
        for n in 1..<AgentInbox.capacity {
            #expect(inbox.enqueue(log(n), bytes: 1) == .queued(startHandler: n == 1, full: false))
        }
        #expect(inbox.enqueue(log(99), bytes: 1) == .queued(startHandler: false, full: true))
        async let room = inbox.room()
        // The reader waits until the handler frees a place; then it may read on.
        try? await Task.sleep(for: .milliseconds(50))
        #expect(inbox.nextToHandle() == log(1))
        #expect(await room)
    }

    @Test func aByteBudgetFillsTheInboxBeforeItsCount() {
        let inbox = AgentInbox()
        #expect(inbox.enqueue(log(1), bytes: AgentInbox.byteBudget) == .queued(startHandler: true, full: true))
    }

    @Test func closingDropsWhatWaitsAndStopsBothSides() async {
        let inbox = AgentInbox()
        for n in 1...AgentInbox.capacity { _ = inbox.enqueue(log(n), bytes: 1) }
        async let room = inbox.room()
        try? await Task.sleep(for: .milliseconds(50))
        inbox.close()
        #expect(await room == false)
        #expect(inbox.nextToHandle() == nil)
        #expect(inbox.enqueue(log(100), bytes: 1) == .closed)
    }
}
