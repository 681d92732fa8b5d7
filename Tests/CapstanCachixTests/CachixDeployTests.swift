import Foundation
import TestSupport
import Testing

/// The cachix deploy protocol end to end: the conformance client as agent and as
/// `deploy activate`, against the real server, with real Nix substituting from the cache.
@Suite(.serialized) struct CachixDeployTests {
    @Test func agentAndActivateSeeSuccessThenFailure() throws {
        let fixture = try CachixFixture()
        let token = try fixture.agentToken("web")
        let marker = fixture.temp.sub("switches")
        let good = try ToyConfiguration.build(name: "web-v1", marker: marker, in: fixture.temp)
        let second = try ToyConfiguration.build(name: "web-v2", marker: marker, in: fixture.temp)
        let failingCheck = try ToyConfiguration.script(exitCode: 1, in: fixture.temp)
        try fixture.admin.run(["push", "fleet", good, second, failingCheck])
        try NixFixtures.delete([good, second, failingCheck])
        let agentEvents = try fixture.startAgent("web", token: token, deployments: 2)
        let activate = ["CACHIX_ACTIVATE_TOKEN": fixture.activateToken]

        let success = try fixture.client(
            ["activate", try fixture.deployJSON(["web": good]), "--poll-interval", "0.5"], environment: activate)
        #expect(success.status == 0, "\(success.output)\n\(CachixFixture.log(of: agentEvents))")
        let succeeded = try #require(success.events("deployment").first)
        #expect(succeeded["status"] as? String == "Succeeded")
        // Said once, by the server, after everything the agent logged.
        #expect(succeeded["finalLine"] as? String == "Successfully activated the deployment.")
        #expect(succeeded["storePath"] as? String == good)
        #expect(succeeded["startedOn"] is String && succeeded["finishedOn"] is String)
        #expect(success.events("log").contains { ($0["line"] as? String)?.hasPrefix("Deploying \(good)") == true })
        #expect(ToyConfiguration.switches(marker) == ["switched \(good)"])
        #expect(NixFixtures.isValid(good), "the agent substituted the configuration from \(fixture.hostedCacheURL)")

        // The rollback script is the one of the agent's system; it fails, so the deployment does.
        let failure = try fixture.client(
            [
                "activate",
                try fixture.deployJSON(
                    ["web": second], rollbackScript: [CachixFixture.system: failingCheck, "aarch64-darwin": good]),
                "--poll-interval", "0.5",
            ], environment: activate)
        #expect(failure.status == 1, "\(failure.output)\n\(CachixFixture.log(of: agentEvents))")
        let failed = try #require(failure.events("deployment").first)
        #expect(failed["status"] as? String == "Failed")
        #expect((failed["finalLine"] as? String)?.hasPrefix("Failed to activate the deployment") == true)

        let events = CachixFixture.events(in: agentEvents)
        #expect(events.first?["event"] as? String == "registered", "\(events)")
        let cache = try #require(events.first?["cache"] as? [String: Any])
        #expect(cache["cacheName"] as? String == "fleet")
        #expect(cache["publicKey"] as? String == fixture.cacheKey.split(separator: ":").last.map(String.init))
        #expect(cache["isPublic"] as? Bool == true)
        let orders = events.filter { $0["event"] as? String == "deployment" }
        #expect(orders.map { $0["storePath"] as? String } == [good, second])
        #expect(orders.map { $0["index"] as? Int } == [1, 2])
        #expect(orders.last?["rollbackScript"] as? String == failingCheck)
        #expect(
            events.filter { $0["event"] as? String == "finished" }.map { $0["succeeded"] as? Bool } == [true, false])
    }

    @Test func unknownAgentIsRefused() throws {
        let fixture = try CachixFixture()
        let run = try fixture.client(
            ["activate", try fixture.deployJSON(["nobody": try fixture.storePath("x")])],
            environment: ["CACHIX_ACTIVATE_TOKEN": fixture.activateToken])
        #expect(run.status == 2)
        #expect(run.output.contains("HTTP 400"), "\(run.output)")
        #expect(run.output.contains("nobody"))
    }

    @Test func cliAndAdapterCreateTheSameDeployments() throws {
        let fixture = try CachixFixture()
        _ = try fixture.agentToken("alpha")
        _ = try fixture.agentToken("beta")
        let paths = ["alpha": try fixture.storePath("alpha"), "beta": try fixture.storePath("beta")]
        let check = try fixture.storePath("check")
        let file = try fixture.deployJSON(paths, rollbackScript: [CachixFixture.system: check])

        let viaCLI = try fixture.admin.with(token: fixture.activateToken).run(
            ["deploy", "activate", file, "--async", "--json"])
        let cliIDs = try Self.ids(fromCLIJSON: viaCLI.stdout)
        let viaAdapter = try fixture.client(
            ["activate", file, "--async"], environment: ["CACHIX_ACTIVATE_TOKEN": fixture.activateToken])
        #expect(viaAdapter.status == 0, "\(viaAdapter.output)")
        var adapterIDs: [String: String] = [:]
        for created in viaAdapter.events("created") {
            adapterIDs[created["agent"] as? String ?? ""] = created["id"] as? String
            #expect((created["url"] as? String)?.hasPrefix(fixture.server.url) == true)
        }
        #expect(Set(adapterIDs.keys) == ["alpha", "beta"])
        #expect(Set(cliIDs.keys) == ["alpha", "beta"])

        for name in ["alpha", "beta"] {
            let first = try deployment(cliIDs[name]!, fixture)
            let second = try deployment(adapterIDs[name]!, fixture)
            for key in ["agent", "storePath", "rollbackScript"] {
                #expect(first[key] as? String == second[key] as? String, "\(name).\(key): \(first) vs \(second)")
            }
            #expect(second["storePath"] as? String == paths[name])
            #expect((second["index"] as? Int) == (first["index"] as? Int).map { $0 + 1 })
            // The newer activation supersedes the older one, whichever API created it.
            #expect(first["status"] as? String == "Cancelled")
            #expect(second["status"] as? String == "Pending")
            let cachix = try HTTP.request(
                "GET", "\(fixture.server.url)/api/v1/deploy/deployment/\(adapterIDs[name]!)",
                token: fixture.activateToken)
            let object = try JSONSerialization.jsonObject(with: cachix.body) as? [String: Any] ?? [:]
            #expect(cachix.status == 200)
            #expect(object["status"] as? String == "Pending")
            #expect(object["index"] as? Int == second["index"] as? Int)
            #expect(object["storePath"] as? String == paths[name])
            #expect(object.keys.contains("startedOn") && object.keys.contains("closureSize"))
        }
    }

    @Test func tokensOfOneWorkspaceCannotActInAnother() throws {
        let fixture = try CachixFixture()
        _ = try fixture.agentToken("web")
        let path = try fixture.storePath("web")
        let created = try fixture.client(
            ["activate", try fixture.deployJSON(["web": path]), "--async"],
            environment: ["CACHIX_ACTIVATE_TOKEN": fixture.activateToken])
        let id = try #require(created.events("created").first?["id"] as? String)

        let otherAdmin = fixture.admin.with(
            token: try fixture.admin.run(["workspace", "create", "other"]).stdoutString
                .trimmingCharacters(in: .whitespacesAndNewlines))
        let otherAgent = try fixture.agentToken("intruder", cli: otherAdmin)
        let otherActivate = try otherAdmin.createToken(kind: "activate")

        let activate = try fixture.client(
            ["activate", try fixture.deployJSON(["web": path]), "--async"],
            environment: ["CACHIX_ACTIVATE_TOKEN": otherActivate])
        #expect(activate.status == 2, "\(activate.output)")
        let status = try HTTP.request(
            "GET", "\(fixture.server.url)/api/v1/deploy/deployment/\(id)", token: otherActivate)
        #expect(status.status == 404)

        let agent = ["CACHIX_AGENT_TOKEN": otherAgent]
        let log = try fixture.client(["log", "intruder", id, "not mine"], environment: agent)
        #expect(log.status == 2, "\(log.output)")
        let report = try fixture.client(["report", "intruder", id, "succeeded"], environment: agent)
        #expect(report.status == 0)
        // Posing as the other workspace's agent: its token names another agent.
        let control = try fixture.client(["agent", "web", "--deployments", "1"], environment: agent)
        #expect(control.status == 2, "\(control.output)")
        #expect(control.events("registered").isEmpty)

        let after = try deployment(id, fixture)
        #expect(after["status"] as? String == "Pending", "\(after)")
    }

    private func deployment(_ id: String, _ fixture: CachixFixture) throws -> [String: Any] {
        let output = try fixture.admin.run(["deploy", "status", id, "--json"]).stdout
        return try JSONSerialization.jsonObject(with: output) as? [String: Any] ?? [:]
    }

    /// `capstan deploy activate --json` answers with the activation's deployments by agent.
    private static func ids(fromCLIJSON data: Data) throws -> [String: String] {
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let agents = object?["agents"] as? [String: Any] ?? [:]
        return agents.compactMapValues { ($0 as? [String: Any])?["id"] as? String }
    }
}
