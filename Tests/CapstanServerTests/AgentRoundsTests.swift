import Foundation
import TestSupport
import Testing

/// Deploys to many connected agents, round after round, while another process holds the SQLite
/// write lock as the agents report: every agent gets every deployment and none is left Pending.
/// A session waiting for the database must still answer the server's pings (here every second),
/// or the server drops agents that are alive and their next deployment never reaches them.
@Suite(.serialized) struct AgentRoundsTests {
    static let agents = 200
    static let rounds = 3

    @Test func everyRoundReachesEveryAgentWhileWritesWait() throws {
        let temp = try TemporaryDirectory("capstan-rounds")
        let data = temp.sub("data")
        let server = try ServerProcess(dataDirectory: data, environment: ["CAPSTAN_AGENT_PING_SECONDS": "1"])
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks/agent_load.py").path
        // Debian's Python carries the websockets package (python3-websockets).
        let load = try HelperProcess(
            [
                "/usr/bin/python3", script, "--port", String(server.port), "--admin-token", try server.adminToken,
                "--agents", String(Self.agents), "--rounds", String(Self.rounds), "--idle-seconds", "0",
                "--timeout", "30", "--lock-db", data + "/capstan.sqlite", "--lock-seconds", "4",
            ], errorPath: temp.sub("load.err"))
        let output = load.finish()
        let json = try #require(
            output.split(separator: "\n").last.flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }, "\(output)\(load.errors)")
        let rounds = try #require(json["rounds"] as? [[String: Any]], "\(json)")
        #expect(rounds.count == Self.rounds)
        for round in rounds {
            #expect(round["received"] as? Int == Self.agents, "\(round)\n\(load.errors)")
            #expect(round["missing"] as? Int == 0, "\(round)")
            #expect(round["wrong_id"] as? Int == 0, "\(round)")
        }
        #expect(json["closed_by_server"] as? Int == 0, "\(json)")
        #expect(json["pending_left"] as? Int == 0, "\(json)\n\(server.log.suffix(2000))")
    }
}
