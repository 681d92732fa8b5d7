import Foundation
import TestSupport
import Testing

/// Rollouts end to end: a real server, agents on machines with their own `/nix`, toy configurations;
/// waves in order with their pause, a failing first wave that stops the rest, and a server killed
/// during a pause that goes on with the rollout when it is back.
@Suite(.serialized) struct RolloutDeployTests {
    /// Three agents and a configuration for each; `failing` names the agent whose activation fails.
    static func fleet(failing: String? = nil) throws -> (DeployFixture, [String: AgentMachine], [String: String]) {
        let fixture = try DeployFixture()
        var machines: [String: AgentMachine] = [:]
        var paths: [String: String] = [:]
        for name in ["a", "b", "c"] {
            machines[name] = try fixture.addAgent(name)
            var options = ToyConfiguration.Options()
            if name == failing { options.switchExitCode = 1 }
            paths[name] = try fixture.configuration("rollout-\(name)", marker: fixture.marker(name), options: options)
        }
        return (fixture, machines, paths)
    }

    /// The rollout id from activate's "rollout ID URL" line.
    static func rolloutID(_ output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix("rollout ") && $0.contains("/rollouts/") }
            .map { String($0.split(separator: " ")[1]) }
    }

    static func date(_ value: Any?) -> Date? {
        (value as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
    }

    func rollout(_ fixture: DeployFixture, _ id: String) throws -> [String: Any] {
        let output = try fixture.admin.run(["deploy", "rollout", "show", id, "--json"]).stdout
        return try JSONSerialization.jsonObject(with: output) as? [String: Any] ?? [:]
    }

    @Test func aFailingFirstWaveStopsTheRolloutBeforeTheOthersSwitch() throws {
        let (fixture, machines, paths) = try Self.fleet(failing: "a")
        let result = try fixture.activate(try fixture.deployJSON(paths), ["--wave", "a", "--wave", "b,c"])
        let output = result.stdoutString
        #expect(result.status == 1, "\(output)\(result.stderrString)\n\(machines["a"]!.log)")
        let rolloutID = try #require(Self.rolloutID(output), "\(output)")
        #expect(output.contains("  wave 1: a"), "\(output)")
        #expect(output.contains("  wave 2: b, c"), "\(output)")
        #expect(output.contains("rollout \(rolloutID): Failed — stopped in wave 1: a did not succeed"), "\(output)")
        let ids = DeployFixture.deploymentIDs(output)
        #expect(try fixture.deployment(try #require(ids["a"]))["status"] as? String == "Failed")
        for name in ["b", "c"] {
            let deployment = try fixture.deployment(try #require(ids[name]))
            #expect(deployment["status"] as? String == "Cancelled")
            let reason = deployment["reason"] as? String ?? ""
            #expect(reason.contains("rollout \(rolloutID) stopped"), "\(reason)")
            #expect(reason.contains("a did not succeed"), "\(reason)")
            #expect(deployment["startedOn"] == nil)
            // Never sent: the machine has no generation and never ran a switch.
            #expect(machines[name]!.currentProfileTarget == nil)
            #expect(!machines[name]!.log.contains(ids[name]!), "\(machines[name]!.log)")
        }
        let shown = try rollout(fixture, rolloutID)
        #expect(shown["state"] as? String == "Failed")
        let text = try fixture.admin.run(["deploy", "rollout", "show", rolloutID]).stdoutString
        #expect(text.contains("state:       Failed, wave 1 of 2"), "\(text)")
    }

    @Test func aHealthyRolloutRunsItsWavesInOrderWithThePauseBetween() throws {
        let (fixture, machines, paths) = try Self.fleet()
        let file = try fixture.deployJSON(
            paths, extra: ["rollout": ["waves": [["a"], ["b", "c"]], "maxFailures": 0, "pause": "4s"]])
        let result = try fixture.activate(file)
        let output = result.stdoutString
        #expect(result.status == 0, "\(output)\(result.stderrString)")
        #expect(output.contains("rollout \(Self.rolloutID(output) ?? "?"): Succeeded"), "\(output)")
        // It said how the rollout moved while it ran.
        #expect(output.contains("rollout: wave 1 of 2 running (a)"), "\(output)")
        #expect(output.contains("rollout: wave 1 of 2 succeeded; the next starts at "), "\(output)")
        // (Whether it also says "wave 2 of 2 running" depends on a poll every 2 s landing while b and c run,
        // which a loaded machine may miss; the order of the waves is checked by their timestamps below.)
        let ids = DeployFixture.deploymentIDs(output)
        let a = try fixture.deployment(try #require(ids["a"]))
        let aFinished = try #require(Self.date(a["finishedOn"]))
        for name in ["b", "c"] {
            let deployment = try fixture.deployment(try #require(ids[name]))
            #expect(deployment["status"] as? String == "Succeeded")
            #expect(deployment["wave"] as? Int == 1)
            let started = try #require(Self.date(deployment["startedOn"]))
            // Timestamps are whole seconds: the pause of 4s is at least 3s apart in them.
            #expect(started.timeIntervalSince(aFinished) >= 3, "a finished \(aFinished), \(name) started \(started)")
            #expect(machines[name]!.currentProfileTarget == paths[name])
        }
        #expect(machines["a"]!.currentProfileTarget == paths["a"])
        let shown = try rollout(fixture, try #require(Self.rolloutID(output)))
        #expect(shown["state"] as? String == "Succeeded")
        let waves = shown["waves"] as? [[[String: Any]]] ?? []
        #expect(waves.map { $0.map { $0["agent"] as? String ?? "" } } == [["a"], ["b", "c"]])
    }

    @Test func aServerKilledDuringThePauseGoesOnWithTheRolloutWhenBack() throws {
        let (fixture, machines, paths) = try Self.fleet()
        let file = try fixture.deployJSON(paths, extra: ["rollout": ["waves": [["a"], ["b", "c"]], "pause": "6s"]])
        let activation = try fixture.activate(file, ["--async"])
        let rolloutID = try #require(Self.rolloutID(activation.stdoutString), "\(activation.stdoutString)")
        let ids = DeployFixture.deploymentIDs(activation.stdoutString)
        #expect(
            try eventually(timeout: 90) { try fixture.deployment(ids["a"]!)["status"] as? String == "Succeeded" },
            "\(machines["a"]!.log)")
        #expect(try eventually { try rollout(fixture, rolloutID)["nextWaveAt"] != nil })
        // Killed during the pause: the next wave was scheduled but not started.
        fixture.server.kill()
        #expect(machines["b"]!.currentProfileTarget == nil)
        try fixture.server.start()
        #expect(try rollout(fixture, rolloutID)["state"] as? String == "Running")
        #expect(
            try eventually(timeout: 120) { try rollout(fixture, rolloutID)["state"] as? String == "Succeeded" },
            "\(fixture.server.log.suffix(4000))")
        let aFinished = try #require(Self.date(try fixture.deployment(ids["a"]!)["finishedOn"]))
        for name in ["b", "c"] {
            let deployment = try fixture.deployment(ids[name]!)
            #expect(deployment["status"] as? String == "Succeeded")
            let started = try #require(Self.date(deployment["startedOn"]))
            #expect(started.timeIntervalSince(aFinished) >= 5, "a finished \(aFinished), \(name) started \(started)")
            #expect(machines[name]!.currentProfileTarget == paths[name])
        }
    }

    @Test func theDashboardShowsARolloutAndPausesAndAbortsItFromSameOriginFormsOnly() throws {
        let (fixture, machines, paths) = try Self.fleet()
        let file = try fixture.deployJSON(paths, extra: ["rollout": ["waves": [["a"], ["b"]], "pause": "1h"]])
        let activation = try fixture.activate(file, ["--async"])
        let rolloutID = try #require(Self.rolloutID(activation.stdoutString), "\(activation.stdoutString)")
        let ids = DeployFixture.deploymentIDs(activation.stdoutString)
        #expect(
            try eventually(timeout: 90) { try rollout(fixture, rolloutID)["nextWaveAt"] != nil },
            "\(machines["a"]!.log)")
        let jar = fixture.temp.sub("cookies")
        let url = fixture.server.url
        try ProcessRunner.run(
            [
                "curl", "-s", "-c", jar, "-o", "/dev/null", "--data-urlencode",
                "token=\(try fixture.server.adminToken)",
                url + "/sign-in",
            ], check: true)
        func get(_ path: String) throws -> String {
            try ProcessRunner.run(["curl", "-s", "-b", jar, url + path], check: true).stdoutString
        }
        func post(_ path: String, origin: String) throws -> String {
            try ProcessRunner.run(
                [
                    "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-b", jar, "-X", "POST", "-H",
                    "Origin: \(origin)",
                    "--data", "", url + path,
                ], check: true
            ).stdoutString
        }
        var page = try get("/rollouts/\(rolloutID)")
        #expect(page.contains(#"<span id="state" class="status status-Running">Running</span>"#), "\(page)")
        #expect(page.contains(#"<table class="wave" id="wave-3">"#), "agents no wave names form a last wave: \(page)")
        #expect(
            page.contains(
                #"<td>b</td><td><a href="/deployments/\#(ids["b"]!)">#1</a></td><td><span class="status status-Held">Held</span>"#
            ), "\(page)")
        #expect(page.contains(#"id="pause-rollout""#) && page.contains(#"id="abort-rollout""#))
        #expect(try get("/deployments/\(ids["b"]!)").contains(#"Wave 2 of <a href="/rollouts/\#(rolloutID)">"#))
        #expect(try get("/rollouts/\(rolloutID)/pause").contains(#"action="/rollouts/\#(rolloutID)/pause""#))

        #expect(try post("/rollouts/\(rolloutID)/pause", origin: "http://evil.example") == "403")
        #expect(try rollout(fixture, rolloutID)["state"] as? String == "Running")
        #expect(try post("/rollouts/\(rolloutID)/pause", origin: url) == "303")
        #expect(try rollout(fixture, rolloutID)["state"] as? String == "Paused")
        page = try get("/rollouts/\(rolloutID)")
        #expect(page.contains(#"id="resume-rollout""#) && !page.contains(#"id="pause-rollout""#), "\(page)")
        #expect(try post("/rollouts/\(rolloutID)/abort", origin: url) == "303")
        let aborted = try rollout(fixture, rolloutID)
        #expect(aborted["state"] as? String == "Aborted")
        for name in ["b", "c"] {
            #expect(try fixture.deployment(ids[name]!)["status"] as? String == "Cancelled")
            #expect(machines[name]!.currentProfileTarget == nil)
        }
        let audit = try fixture.admin.run(["audit"]).stdoutString
        #expect(audit.contains("rollout.pause\t\(rolloutID)"), "\(audit)")
        #expect(audit.contains("rollout.abort\t\(rolloutID)"), "\(audit)")
    }

    @Test func twoReplicasOnOnePostgreSQLStartEachWaveOnce() throws {
        let postgres = try PostgresServer.shared()
        let database = try postgres.createDatabase(prefix: "rollouts")
        let temp = try TemporaryDirectory("capstan-rollout-replicas")
        let data = temp.sub("data")
        let replicaA = try ServerProcess(dataDirectory: data, arguments: ["--database-url", database])
        let replicaB = try ServerProcess(dataDirectory: data, arguments: ["--database-url", database])
        let fixture = try DeployFixture(server: replicaA, temp: temp)
        // a and c talk to replica A, b to replica B; both replicas hear every deployment finish.
        var machines: [String: AgentMachine] = [:]
        var paths: [String: String] = [:]
        for name in ["a", "b", "c"] {
            let created = try fixture.admin.run(["agent", "create", name, "--json"]).stdout
            let token = try #require(
                (try JSONSerialization.jsonObject(with: created) as? [String: Any])?["token"] as? String)
            let machine = try AgentMachine(
                name: name, token: token, serverURL: name == "b" ? replicaB.url : replicaA.url, in: temp)
            try machine.start()
            machines[name] = machine
            paths[name] = try fixture.configuration("replicas-\(name)", marker: fixture.marker(name))
        }
        #expect(
            try eventually {
                let listed = try fixture.admin.run(["agent", "list", "--json"]).stdout
                let agents = try JSONSerialization.jsonObject(with: listed) as? [[String: Any]] ?? []
                return agents.filter { $0["online"] as? Bool == true }.count == 3
            })
        let result = try fixture.activate(
            try fixture.deployJSON(paths), ["--wave", "a", "--wave", "b", "--wave", "c", "--timeout", "180s"])
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)")
        for name in ["a", "b", "c"] { #expect(machines[name]!.currentProfileTarget == paths[name]) }
        // Waves 2 and 3 were each started by exactly one of the two replicas (which share a data
        // directory, and so one log file).
        #expect(replicaA.logPath == replicaB.logPath)
        let started = replicaA.log.components(separatedBy: "rollout wave started").count - 1
        #expect(started == 2, "\(replicaA.log.suffix(3000))")
        let ids = DeployFixture.deploymentIDs(result.stdoutString)
        let finished = try ["a", "b", "c"].map {
            try #require(Self.date(try fixture.deployment(ids[$0]!)["finishedOn"]))
        }
        let startedOn = try ["b", "c"].map { try #require(Self.date(try fixture.deployment(ids[$0]!)["startedOn"])) }
        #expect(startedOn[0] >= finished[0] && startedOn[1] >= finished[1])
    }
}
