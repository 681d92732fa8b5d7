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

    @Test func metricsMoveWhenADeploymentRuns() throws {
        let fixture = try DeployFixture()
        let before = try Self.scrape(fixture.server.url)
        #expect(before["capstan_agents_connected"] == 0)
        #expect(before[#"capstan_deployments{status="Succeeded"}"#] == 0)

        let machine = try fixture.addAgent("metered")
        #expect(
            eventually { (try? Self.scrape(fixture.server.url)["capstan_agents_connected"]) == 1 }, "\(machine.log)")
        let path = try fixture.configuration("metered", marker: fixture.marker("metered"))
        let result = try fixture.activate(try fixture.deployJSON(["metered": path]))
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)")

        let after = try Self.scrape(fixture.server.url)
        #expect(after[#"capstan_deployments{status="Succeeded"}"#] == 1)
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
        #expect((try Self.scrape(fixture.server.url)[#"capstan_uploads_rejected_total{reason="invalid"}"#] ?? 0) >= 1)
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
