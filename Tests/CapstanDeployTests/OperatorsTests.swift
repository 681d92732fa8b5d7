import Foundation
import TestSupport
import Testing

/// What operators watch: `/metrics` and the audit log, with real deployments on real agents.
@Suite(.serialized) struct OperatorsTests {
    /// Prometheus text format: `name{labels} value` lines; comments skipped.
    static func scrape(_ url: String) throws -> [String: Double] {
        let result = try ProcessRunner.run(["curl", "-sf", "\(url)/metrics"])
        guard result.status == 0 else { throw TestFailure("GET /metrics failed: \(result.stderrString)") }
        var samples: [String: Double] = [:]
        for line in result.stdoutString.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[String(line[..<space])] = value
        }
        return samples
    }

    /// Whether a program is on PATH.
    static func installed(_ program: String) -> Bool {
        (try? ProcessRunner.run(["sh", "-c", "command -v \(program)"]).status) == 0
    }

    @Test func metricsMoveWhenADeploymentRuns() throws {
        let metricsPort = try FreePort.find()
        let metrics = "http://127.0.0.1:\(metricsPort)"
        let fixture = try DeployFixture(serverArguments: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        let before = try Self.scrape(metrics)
        #expect(before["capstan_agents_connected"] == 0)
        #expect(before[#"capstan_deployments{status="Succeeded"}"#] == 0)

        let machine = try fixture.addAgent("metered")
        #expect(eventually { (try? Self.scrape(metrics)["capstan_agents_connected"]) == 1 }, "\(machine.log)")
        let path = try fixture.configuration("metered", marker: fixture.marker("metered"))
        let result = try fixture.activate(try fixture.deployJSON(["metered": path]))
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)")

        // Counted in memory from the deploy events: the tally may trail the activation by a moment.
        #expect(
            eventually(timeout: 10) { (try? Self.scrape(metrics)[#"capstan_deployments{status="Succeeded"}"#]) == 1 })
        let after = try Self.scrape(metrics)
        #expect(after[#"capstan_deployments{status="Pending"}"#] == 0)
        #expect(after[#"capstan_deployments{status="InProgress"}"#] == 0)
        #expect(after[#"capstan_deployments_finished_total{status="Succeeded"}"#] == 1)
        #expect(after[#"capstan_deployment_duration_seconds_count{status="Succeeded"}"#] == 1)
        #expect((after[#"capstan_cache_requests_total{kind="narinfo",result="hit"}"#] ?? 0) >= 2, "\(after)")
        #expect((after[#"capstan_cache_requests_total{kind="nar",result="hit"}"#] ?? 0) >= 2)
        #expect((after[#"capstan_cache_bytes_served_total{kind="nar"}"#] ?? 0) > 20_000)

        // A NAR whose declared hash is wrong is refused and counted.
        let bogus = fixture.temp.sub("bogus.nar")
        try Data("not a nar".utf8).write(to: URL(fileURLWithPath: bogus))
        let put = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "--data-binary", "@\(bogus)",
            "-H", "Authorization: Bearer \(try fixture.server.adminToken)",
            "\(fixture.server.url)/cache/fleet/\(String(repeating: "0", count: 32)).narinfo",
        ])
        #expect(put.stdoutString == "400")
        #expect((try Self.scrape(metrics)[#"capstan_uploads_rejected_total{reason="invalid"}"#] ?? 0) >= 1)
    }

    /// `/metrics` is no public page: unserved by default, behind its own token on the main address,
    /// and on a separate address for the operator's network.
    @Test func metricsAreServedOnlyWhereConfigured() throws {
        let temp = try TemporaryDirectory("capstan-metrics")
        func status(_ url: String, token: String? = nil) throws -> Int {
            try HTTP.request("GET", url, token: token).status
        }
        let plain = try ServerProcess(dataDirectory: temp.sub("plain"))
        #expect(try status("\(plain.url)/metrics") == 404)
        #expect(try status("\(plain.url)/metrics", token: try plain.adminToken) == 404)
        plain.stop()

        let metricsPort = try FreePort.find()
        let guarded = try ServerProcess(
            dataDirectory: temp.sub("guarded"), arguments: ["--metrics-listen", "127.0.0.1:\(metricsPort)"],
            environment: ["CAPSTAN_METRICS_TOKEN": "scrape-secret"])
        let metrics = "http://127.0.0.1:\(metricsPort)"
        #expect(try status("\(guarded.url)/metrics") == 401)
        #expect(try status("\(guarded.url)/metrics", token: "wrong") == 401)
        // An API token, even an admin's, is no metrics token.
        #expect(try status("\(guarded.url)/metrics", token: try guarded.adminToken) == 401)
        let scraped = try HTTP.request("GET", "\(guarded.url)/metrics", token: "scrape-secret")
        #expect(scraped.status == 200)
        #expect(scraped.text.contains("# HELP capstan_agents_connected "), "\(scraped.text)")
        // The token is asked for on the metrics address too, which serves nothing else.
        #expect(try status("\(metrics)/metrics") == 401)
        #expect(try status("\(metrics)/metrics", token: "scrape-secret") == 200)
        #expect(try status("\(metrics)/api/v1/caches", token: try guarded.adminToken) == 404)
        guarded.stop()
    }

    /// Every metric has HELP text and a name Prometheus' own linter accepts.
    @Test(.enabled(if: installed("promtool"), "promtool is missing: apt-get install prometheus"))
    func metricsPassPromtool() throws {
        let metricsPort = try FreePort.find()
        let fixture = try DeployFixture(serverArguments: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        // Every kind of metric present: a narinfo miss and hit, a NAR, a rejected upload.
        _ = try HTTP.request("GET", "\(fixture.server.url)/cache/fleet/\(String(repeating: "0", count: 32)).narinfo")
        let page = try HTTP.request("GET", "http://127.0.0.1:\(metricsPort)/metrics")
        #expect(page.status == 200)
        let lint = try ProcessRunner.run(["promtool", "check", "metrics"], input: page.body)
        #expect(lint.status == 0, "\(lint.stdoutString)\(lint.stderrString)\n\(page.text)")
        #expect(lint.stdoutString.isEmpty && lint.stderrString.isEmpty, "\(lint.stdoutString)\(lint.stderrString)")
        for line in page.text.split(separator: "\n") where line.hasPrefix("# TYPE ") {
            let name = line.split(separator: " ")[2]
            #expect(page.text.contains("# HELP \(name) "), "no HELP for \(name)")
        }
    }

    @Test func auditLogSaysWhoDidWhat() throws {
        let fixture = try DeployFixture()
        try fixture.addAgent("audited")
        let ci = try fixture.admin.run(["token", "create", "--kind", "activate", "--label", "ci <main>", "--json"])
            .stdout
        let ciObject = try JSONSerialization.jsonObject(with: ci) as? [String: Any]
        let ciToken = try #require(ciObject?["token"] as? String)
        let ciInfo = try #require(ciObject?["info"] as? [String: Any])
        let path = try fixture.configuration("audited", marker: fixture.marker("audited"))
        let activated = try fixture.admin.with(token: ciToken).run(
            ["deploy", "activate", try fixture.deployJSON(["audited": path])], check: false)
        #expect(activated.status == 0, "\(activated.stdoutString)\(activated.stderrString)")
        let id = try #require(DeployFixture.deploymentIDs(activated.stdoutString)["audited"])
        try fixture.admin.run(["deploy", "retry", id])
        try fixture.admin.run(["token", "revoke", try #require(ciInfo["id"] as? String)])

        let json = try fixture.admin.run(["audit", "--json"]).stdout
        let events = try #require(try JSONSerialization.jsonObject(with: json) as? [[String: Any]])
        let actions = events.map { $0["action"] as? String ?? "" }
        #expect(
            Array(actions.prefix(5))
                == ["token.revoke", "deployment.retry", "deployment.activate", "token.create", "agent.create"],
            "\(events)")
        let activation = try #require(events.first { $0["action"] as? String == "deployment.activate" })
        #expect(activation["actor"] as? String == "ci <main>")
        #expect(activation["target"] as? String == id)
        #expect(actions.contains("cache.create"))

        let text = try fixture.admin.run(["audit"]).stdoutString
        #expect(text.contains("ci <main>\tdeployment.activate\t\(id)"), "\(text)")
        // Only admins read the audit log.
        let denied = try fixture.admin.with(token: fixture.activateToken).run(["audit"], check: false)
        #expect(denied.status != 0)
        #expect(denied.stderrString.contains("admin"), "\(denied.stderrString)")
    }
}
