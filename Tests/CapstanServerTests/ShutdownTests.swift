import Foundation
import TestSupport
import Testing

/// SIGTERM with many agents connected, or a log followed that has nothing more to say: the server
/// ends them all at once and stops within seconds.
@Suite(.serialized) struct ShutdownTests {
    static let agents = 1000

    /// Sends SIGTERM and expects the server to have exited cleanly within 5 s.
    static func expectStopsWithinSeconds(afterSIGTERM server: ServerProcess) {
        let start = Date()
        kill(server.process.processIdentifier, SIGTERM)
        while server.process.isRunning && Date().timeIntervalSince(start) < 60 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let stoppedAfter = Date().timeIntervalSince(start)
        // A process still running has no termination status to ask for.
        guard !server.process.isRunning else {
            Issue.record("still running \(stoppedAfter) s after SIGTERM\n\(server.log.suffix(2000))")
            return
        }
        #expect(stoppedAfter < 5, "stopped after \(stoppedAfter) s\n\(server.log.suffix(2000))")
        #expect(server.process.terminationStatus == 0, "\(server.log.suffix(2000))")
    }

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

        Self.expectStopsWithinSeconds(afterSIGTERM: server)

        let rest = holder.finish()
        #expect(rest.hasPrefix("closed \(Self.agents) "), "\(rest)\(holder.errors)")
    }

    /// The deployment's agent never connects, so its log would wait for lines forever.
    @Test func sigtermEndsAFollowedLogOfAPendingDeployment() throws {
        let temp = try TemporaryDirectory("capstan-shutdown-follow")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        try admin.run(["agent", "create", "asleep"])
        let deployJSON = temp.sub("deploy.json")
        let storePath = "/nix/store/\(String(repeating: "a", count: 32))-system"
        try #"{"agents":{"asleep":"\#(storePath)"}}"#.write(toFile: deployJSON, atomically: true, encoding: .utf8)
        let activated = try admin.run(["deploy", "activate", deployJSON, "--async", "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: activated) as? [String: Any]
        let agents = object?["agents"] as? [String: [String: Any]]
        let id = try #require(agents?["asleep"]?["id"] as? String, "\(String(decoding: activated, as: UTF8.self))")

        let follower = try HelperProcess(
            [
                "/usr/bin/curl", "-svN", "--max-time", "60", "-H", "Authorization: Bearer \(try server.adminToken)",
                "\(server.url)/api/v1/deployments/\(id)/log",
            ], errorPath: temp.sub("follower.err"))
        #expect(eventually(timeout: 30) { follower.errors.contains("< HTTP/1.1 200") }, "\(follower.errors)")
        Thread.sleep(forTimeInterval: 0.5)
        #expect(follower.process.isRunning, "the follow must still wait: \(follower.errors)")

        Self.expectStopsWithinSeconds(afterSIGTERM: server)

        // The stream ended as a whole response (nothing was logged yet), not as a connection cut.
        let rest = follower.finish()
        #expect(rest.isEmpty, "\(rest)")
        #expect(follower.process.terminationStatus == 0, "curl: \(follower.errors)")
    }
}
