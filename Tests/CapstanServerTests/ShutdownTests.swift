import Foundation
import TestSupport
import Testing

/// SIGTERM with many agents connected: the server closes them all at once and stops within seconds.
@Suite(.serialized) struct ShutdownTests {
    static let agents = 1000

    @Test func sigtermWithAThousandAgentsStopsWithinSeconds() throws {
        let temp = try TemporaryDirectory("capstan-shutdown")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks/agent_hold.py").path
        // Debian's Python carries the websockets package (python3-websockets).
        let holder = try HelperProcess(
            [
                "/usr/bin/python3", script, "--port", String(server.port), "--admin-token", try server.adminToken,
                "--agents", String(Self.agents), "--wait", "60",
            ], errorPath: temp.sub("holder.err"))
        let line = try holder.readLine()
        try #require(line == "connected \(Self.agents)", "\(line ?? "")\(holder.errors)")

        let start = Date()
        kill(server.process.processIdentifier, SIGTERM)
        while server.process.isRunning && Date().timeIntervalSince(start) < 60 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let stoppedAfter = Date().timeIntervalSince(start)
        #expect(!server.process.isRunning)
        #expect(stoppedAfter < 5, "stopped after \(stoppedAfter) s")
        #expect(server.process.terminationStatus == 0, "\(server.log.suffix(2000))")

        let rest = holder.finish()
        #expect(rest.hasPrefix("closed \(Self.agents) "), "\(rest)\(holder.errors)")
    }
}
