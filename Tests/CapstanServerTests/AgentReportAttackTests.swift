import Foundation
import TestSupport
import Testing

/// A hostile agent, speaking Capstan's agent protocol with a valid agent token, against the real
/// server: it cannot finish what it never started, cannot name what it runs, cannot flood its log,
/// and cannot write after the outcome. A long log reaches the dashboard one page at a time.
@Suite(.serialized) struct AgentReportAttackTests {
    /// Connects as an agent, then sends each JSON message of `script` (one per line) in order.
    static let rogueAgent = #"""
        import asyncio, json, sys, websockets
        url, token, name, script = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
        async def main():
            async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + token}, max_size=None) as ws:
                await ws.send(json.dumps({"type": "hello", "hello": {"name": name, "version": "rogue",
                    "system": "x86_64-linux", "currentStorePath": "not a store path"}}))
                welcome = json.loads(await ws.recv())
                assert welcome["type"] == "welcome", welcome
                for line in open(script):
                    if line.strip():
                        await ws.send(line.strip())
                        await asyncio.sleep(0.3)
        asyncio.run(main())
        """#

    /// Creates agent `name`; returns its token.
    static func createAgent(_ name: String, by admin: CapstanCLI) throws -> String {
        let created = try admin.run(["agent", "create", name, "--json"]).stdout
        return try #require((try JSONSerialization.jsonObject(with: created) as? [String: Any])?["token"] as? String)
    }

    /// Sends `messages` over one connection of agent `name`, then closes it.
    static func send(
        _ messages: [[String: Any]], as name: String, token: String, to server: ServerProcess,
        in temp: TemporaryDirectory
    ) throws {
        let script = temp.sub("script-\(UUID().uuidString)")
        try messages.map { String(decoding: try JSONSerialization.data(withJSONObject: $0), as: UTF8.self) }
            .joined(separator: "\n").write(toFile: script, atomically: true, encoding: .utf8)
        let program = temp.sub("rogue.py")
        try rogueAgent.write(toFile: program, atomically: true, encoding: .utf8)
        let url = server.url.replacingOccurrences(of: "http://", with: "ws://") + "/api/v1/agent/connect"
        let result = try ProcessRunner.run(["/usr/bin/python3", program, url, token, name, script])
        #expect(result.status == 0, "\(result.stderrString)")
    }

    @Test func aRogueAgentCannotRewriteItsDeployments() throws {
        let temp = try TemporaryDirectory("capstan-rogue")
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), environment: ["CAPSTAN_MAX_LOG_LINES": "1500"])
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        let token = try Self.createAgent("rogue", by: admin)
        let path = "/nix/store/\(String(repeating: "r", count: 32))-system"
        func activate() throws -> String {
            let deployJSON = temp.sub("deploy-\(UUID().uuidString).json")
            try #"{"agents": {"rogue": "\#(path)"}}"#.write(toFile: deployJSON, atomically: true, encoding: .utf8)
            let output = try admin.run(["deploy", "activate", deployJSON, "--async", "--json"]).stdout
            let agents = (try JSONSerialization.jsonObject(with: output) as? [String: Any])?["agents"] as? [String: Any]
            return try #require((agents?["rogue"] as? [String: Any])?["id"] as? String)
        }
        func status(_ id: String) throws -> [String: Any] {
            try #require(
                try JSONSerialization.jsonObject(with: admin.run(["deploy", "status", id, "--json"]).stdout)
                    as? [String: Any])
        }
        func run(_ messages: [[String: Any]]) throws {
            try Self.send(messages, as: "rogue", token: token, to: server, in: temp)
        }
        let outcome: (String, Bool) -> [String: Any] = { id, succeeded in
            [
                "type": "finished",
                "outcome": [
                    "id": id, "succeeded": succeeded, "rolledBack": false,
                    "currentStorePath": "/etc/passwd",
                ] as [String: Any],
            ]
        }

        // Pending → Succeeded without ever starting: refused.
        let first = try activate()
        try run([outcome(first, true)])
        #expect(try status(first)["status"] as? String == "Pending")
        let agents =
            try JSONSerialization.jsonObject(with: admin.run(["agent", "list", "--json"]).stdout) as? [[String: Any]]
        #expect(agents?.first?["currentStorePath"] == nil, "the agent named a path it cannot be running")

        // Started, then a flood: a 1 MiB line, 2,000 lines in one message, dates from the future.
        // Just under the WebSocket frame limit (1 MiB), which ends the connection of a larger message.
        let huge = String(repeating: "x", count: 900 << 10)
        let future = "2099-01-01T00:00:00Z"
        let lines = (0..<2000).map { ["time": future, "line": "flood \($0)"] }
        try run([
            ["type": "started", "id": first, "closureSize": -1],
            ["type": "log", "id": first, "lines": [["time": future, "line": huge]]],
            ["type": "log", "id": first, "lines": lines],
            ["type": "log", "id": first, "lines": lines],
            outcome(first, true),
            ["type": "log", "id": first, "lines": [["time": future, "line": "written after the outcome"]]],
            ["type": "started", "id": first, "closureSize": 1],
        ])
        let finished = try status(first)
        try #require(finished["status"] as? String == "Succeeded", "\(finished)")
        #expect(finished["closureSize"] == nil, "neither a negative size nor one sent after the outcome is kept")
        let log = try HTTP.request("GET", "\(server.url)/api/v1/deployments/\(first)/log", token: try server.adminToken)
        let items = log.text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let logged = items.compactMap { ($0["line"] as? [String: Any])?["line"] as? String }
        #expect(logged.count == 1502, "1,500 agent lines, the truncation note, the outcome: \(logged.count)")
        #expect(logged.allSatisfy { $0.utf8.count <= 17 << 10 })
        #expect(logged.first?.hasSuffix("[line truncated]") == true)
        #expect(logged.contains { $0.contains("more lines of one message were dropped") })
        #expect(logged.dropLast().last?.hasPrefix("[log truncated") == true)
        #expect(logged.last == "Successfully activated the deployment.")
        #expect(!logged.contains("written after the outcome"))
        #expect(!log.text.contains("2099"), "dates from the future are replaced by the server's")
        let agentsAfter =
            try JSONSerialization.jsonObject(with: admin.run(["agent", "list", "--json"]).stdout) as? [[String: Any]]
        #expect(agentsAfter?.first?["currentStorePath"] as? String == path)

        // A failure's reason is one printable line of bounded length, in the API and on a terminal.
        let second = try activate()
        let hostile = "\u{1B}]52;c;cm0gLXJmIH4=\u{07}\u{1B}[2J\nforged line\r" + String(repeating: "y", count: 100_000)
        try run([
            ["type": "started", "id": second],
            [
                "type": "finished",
                "outcome": ["id": second, "succeeded": false, "rolledBack": true, "reason": hostile] as [String: Any],
            ],
        ])
        let failed = try status(second)
        let reason = failed["reason"] as? String ?? ""
        #expect(failed["status"] as? String == "Failed", "\(failed)")
        #expect(reason.contains("forged line") && reason.count < 1100, "\(reason.prefix(100)) (\(reason.count))")
        #expect(!reason.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        let shown = try admin.run(["deploy", "status", second]).stdoutString
        #expect(!shown.contains("\u{1B}") && !shown.contains("\u{07}"), "\(shown.prefix(300))")

        // The dashboard shows a page of the log, not all of it.
        let jar = temp.sub("jar")
        _ = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-c", jar, "-H", "Origin: \(server.url)",
            "--data-urlencode", "token=\(try server.adminToken)", "\(server.url)/sign-in",
        ])
        let page = try ProcessRunner.run(["curl", "-s", "-b", jar, "\(server.url)/deployments/\(first)"]).stdoutString
        #expect(page.components(separatedBy: "<span class=\"line\">").count - 1 == 1000)
        #expect(page.contains("id=\"earlier\""))
        #expect(page.contains("Lines up to 1502 of 1502"))
    }

    /// Reports of local actions become audit entries: a hostile machine cannot date them in the
    /// future, write control characters or a second line into them, replay one, or flood the log.
    @Test func aRogueAgentCannotForgeOrFloodTheAuditLog() throws {
        let temp = try TemporaryDirectory("capstan-rogue-audit")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        let token = try Self.createAgent("rogue", by: admin)
        let path = "/nix/store/\(String(repeating: "r", count: 32))-system"
        func report(_ id: String, storePath: String = path, reason: String? = nil) -> [String: Any] {
            var report: [String: Any] = [
                "id": id, "action": "rollback", "storePath": storePath, "succeeded": reason == nil,
                "rolledBack": false, "startedAt": "2099-01-01T00:00:00Z", "finishedAt": "2099-01-01T00:00:01Z",
            ]
            report["reason"] = reason
            return ["type": "localAction", "localAction": report]
        }
        let injected = "\u{1B}]52;c;cm0gLXJmIH4=\u{07}\u{1B}[2J\nSig: forged\r" + String(repeating: "x", count: 100_000)
        var messages = [
            report("local-first", reason: injected), report("local-first", reason: injected),
            report("local-%_", reason: "wildcards in the id"), report(String(repeating: "a", count: 65)),
            report("local-badpath", storePath: "/etc/passwd"),
        ]
        messages += (0..<40).map { report("local-flood-\($0)") }
        try Self.send(messages, as: "rogue", token: token, to: server, in: temp)

        var events: [[String: Any]] = []
        #expect(
            eventually(timeout: 30) {
                events =
                    (try? JSONSerialization.jsonObject(with: admin.run(["audit", "--json", "--limit", "1000"]).stdout)
                        as? [[String: Any]] ?? []) ?? []
                return events.filter { $0["action"] as? String == "agent.local" }.count >= 30
            })
        let local = events.filter { $0["action"] as? String == "agent.local" }
        #expect(local.count == 30, "at most 30 reports an hour per agent: \(local.count)")
        #expect(local.allSatisfy { $0["target"] as? String == "rogue" })
        let details = local.compactMap { $0["detail"] as? String }
        #expect(details.filter { $0.hasPrefix("local-first: ") }.count == 1, "a replayed report is recorded once")
        #expect(!details.contains { $0.contains("wildcards") || $0.hasPrefix("aaaa") || $0.contains("/etc/passwd") })
        let first = try #require(details.first { $0.hasPrefix("local-first: ") })
        #expect(
            !first.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) },
            "\(first.prefix(200))")
        #expect(first.count < 1200, "the reason is cut: \(first.count) characters")
        #expect(first.hasSuffix("… [cut]"))
        #expect(
            local.allSatisfy { !(($0["time"] as? String) ?? "").hasPrefix("2099") }, "recorded at the server's time")
    }

    /// A rollout's pause and failure bound at the edge of what they hold: the longest pause accepted is
    /// scheduled after a wave succeeds without overflowing a date, a longer one is refused by name,
    /// and the largest failure bound is kept.
    @Test func rolloutBoundsAtTheirLimitsNeitherOverflowNorStopTheServer() throws {
        let temp = try TemporaryDirectory("capstan-rogue-rollout")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        let token = try Self.createAgent("edge-one", by: admin)
        _ = try admin.run(["agent", "create", "edge-two"])
        let path = "/nix/store/\(String(repeating: "d", count: 32))-system"
        func deployJSON(pause: String) throws -> String {
            let file = temp.sub("deploy-\(UUID().uuidString).json")
            try #"""
            {"agents": {"edge-one": "\#(path)", "edge-two": "\#(path)"},
             "rollout": {"waves": [["edge-one"], ["edge-two"]], "pause": "\#(pause)", "maxFailures": 9223372036854775807}}
            """#.write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }
        let refused = try admin.run(
            ["deploy", "activate", try deployJSON(pause: "99999999999999999999h"), "--async"], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("rollout.pause"), "\(refused.stderrString)")

        let output = try admin.run([
            "deploy", "activate", try deployJSON(pause: "9100000000000000s"), "--async", "--json",
        ]).stdout
        let activated = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let id = try #require((activated?["rollout"] as? [String: Any])?["id"] as? String)
        let first = try #require(
            ((activated?["agents"] as? [String: Any])?["edge-one"] as? [String: Any])?["id"] as? String)
        try Self.send(
            [
                ["type": "started", "id": first],
                [
                    "type": "finished",
                    "outcome": ["id": first, "succeeded": true, "rolledBack": false] as [String: Any],
                ],
            ], as: "edge-one", token: token, to: server, in: temp)
        var rollout: [String: Any] = [:]
        #expect(
            eventually(timeout: 30) {
                let answer = try? HTTP.request(
                    "GET", "\(server.url)/api/v1/rollouts/\(id)", token: try server.adminToken)
                rollout =
                    (answer.flatMap { try? JSONSerialization.jsonObject(with: Data($0.text.utf8)) } as? [String: Any])
                    ?? [:]
                return rollout["nextWaveAt"] != nil
            }, "\(rollout)")
        #expect(rollout["state"] as? String == "Running", "\(rollout)")
        #expect(rollout["maxFailures"] as? Int == Int.max, "\(rollout)")
        #expect(try HTTP.request("GET", "\(server.url)/health").status == 200)
        let shown = try admin.run(["deploy", "rollout", "show", id])
        #expect(shown.status == 0, "\(shown.stderrString)")
    }
}
