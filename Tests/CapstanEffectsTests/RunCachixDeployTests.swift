import Foundation
import TestSupport
import Testing

/// runCachixDeploy from a flake-less default.nix, run by `capstan effect run`, deploying to real agents.
@Suite(.serialized) struct RunCachixDeployTests {
    @Test func deploysToARunningAgentAndWaits() throws {
        let fixture = try EffectFixture()
        try fixture.startServer()
        let machine = try fixture.addAgent("machine1")
        let marker = fixture.marker("machine1")
        let path = try fixture.configuration("machine1", marker: marker)
        try fixture.writeProject(
            "{ effect = lib.runCachixDeploy { deploy.agents.machine1 = \(EffectFixture.storePath(path)); }; }")
        try fixture.addActivateSecret()
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(machine.currentProfileTarget == path, "\(machine.log)")
        #expect(ToyConfiguration.switches(marker) == ["switched \(path)"])
        #expect(result.stdoutString.contains("[machine1] switching to \(path)"), "\(result.output)")
    }

    @Test func failedActivationFailsTheEffect() throws {
        let fixture = try EffectFixture()
        try fixture.startServer()
        let machine = try fixture.addAgent("machine1")
        let marker = fixture.marker("machine1")
        let good = try fixture.configuration("good", marker: marker)
        var failing = ToyConfiguration.Options()
        failing.switchExitCode = 3
        let broken = try fixture.configuration("broken", marker: marker, options: failing)
        try fixture.writeProject(
            """
            {
              good = lib.runCachixDeploy { deploy.agents.machine1 = \(EffectFixture.storePath(good)); };
              broken = lib.runCachixDeploy { deploy.agents.machine1 = \(EffectFixture.storePath(broken)); };
            }
            """)
        try fixture.addActivateSecret()
        #expect(try fixture.runEffect("good").status == 0)
        let result = try fixture.runEffect("broken")
        #expect(result.status == 1, "\(result.output)")
        #expect(result.stdoutString.contains("Failed"), "\(result.output)")
        #expect(result.stderrString.contains("failed with exit status 1"), "\(result.output)")
        // The agent rolled back; the effect waited for that before it ended.
        #expect(machine.currentProfileTarget == good, "\(machine.log)")
        #expect(ToyConfiguration.switches(marker) == ["switched \(good)", "switched \(broken)", "switched \(good)"])
    }

    @Test func asyncReturnsBeforeTheAgentIsDone() throws {
        let fixture = try EffectFixture()
        try fixture.startServer()
        // The agent is offline: only an effect that does not wait can finish.
        let machine = try fixture.addAgent("laptop", start: false)
        let marker = fixture.marker("laptop")
        let path = try fixture.configuration("laptop", marker: marker)
        try fixture.writeProject(
            "{ effect = lib.runCachixDeploy { async = true; deploy.agents.laptop = \(EffectFixture.storePath(path)); }; }"
        )
        try fixture.addActivateSecret()
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdoutString.contains("laptop: deployment #"), "\(result.output)")
        #expect(ToyConfiguration.switches(marker).isEmpty)
        try machine.start()
        #expect(try eventually { machine.currentProfileTarget == path }, "\(machine.log)")
    }

    @Test func deployJsonFileIsActivated() throws {
        let fixture = try EffectFixture()
        try fixture.startServer()
        let machine = try fixture.addAgent("machine1")
        let path = try fixture.configuration("from-file", marker: fixture.marker("machine1"))
        try "{\"agents\": {\"machine1\": \"\(path)\"}}".write(
            toFile: fixture.project + "/deploy.json", atomically: true, encoding: .utf8)
        try fixture.writeProject("{ effect = lib.runCachixDeploy { deployJsonFile = ./deploy.json; }; }")
        try fixture.addActivateSecret()
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(machine.currentProfileTarget == path, "\(machine.log)")
    }

    @Test func secretsMapNamesAnotherSecret() throws {
        let fixture = try EffectFixture()
        try fixture.startServer()
        let machine = try fixture.addAgent("machine1")
        let path = try fixture.configuration("other", marker: fixture.marker("machine1"))
        try fixture.writeProject(
            """
            { effect = lib.runCachixDeploy {
                secretsMap.activate = "other";
                deploy.agents.machine1 = \(EffectFixture.storePath(path));
              }; }
            """)
        try fixture.addActivateSecret(named: "other")
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(machine.currentProfileTarget == path, "\(machine.log)")
    }

    @Test func neitherOrBothDeployArgumentsAreEvaluationErrors() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(
            """
            {
              neither = lib.runCachixDeploy { };
              both = lib.runCachixDeploy { deploy.agents = { }; deployJsonFile = ./default.nix; };
            }
            """)
        let neither = try fixture.runEffect("neither")
        #expect(neither.status != 0)
        #expect(neither.stderrString.contains("you must provide either a deploy or deployJsonFile argument"))
        let both = try fixture.runEffect("both")
        #expect(both.status != 0)
        #expect(both.stderrString.contains("you must set either `deploy` or `deployJsonFile`"), "\(both.output)")
    }

    @Test func prebuiltPathsArePushedBeforeDeploying() throws {
        let fixture = try EffectFixture()
        let server = try fixture.startServer()
        let machine = try fixture.addAgent("machine1")
        let marker = fixture.marker("machine1")
        // Built here and never pushed by hand: the agent, with its own empty /nix, can only get it from the push.
        let path = try fixture.configuration("unpushed", marker: marker, push: false)
        let pushToken = try server.admin.createToken(kind: "push", cache: "fleet")
        let caches = """
            { "capstan": { "kind": "CapstanCache", "url": "\(server.server.url)", "cache": "fleet", "token": "\(pushToken)" } }
            """
        try FileManager.default.createDirectory(
            atPath: (fixture.secretsFile as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try caches.write(toFile: fixture.temp.sub("config/binary-caches.json"), atomically: true, encoding: .utf8)
        try fixture.writeProject(
            "{ effect = lib.runCachixDeploy { deploy.agents.machine1 = \(EffectFixture.storePath(path)); }; }")
        try fixture.addActivateSecret()
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stderrString.contains("pushing 2 prebuilt paths"), "\(result.output)")
        #expect(machine.currentProfileTarget == path, "\(machine.log)")
        #expect(ToyConfiguration.switches(marker) == ["switched \(path)"])
    }

    @Test func malformedBinaryCachesFileNamesTheEntry() throws {
        let fixture = try EffectFixture()
        let marker = fixture.marker("ran")
        try fixture.writeProject("{ effect = lib.mkEffect { effectScript = \"touch \(marker)\"; }; }")
        let caches = fixture.temp.sub("caches.json")
        try """
        { "good": { "kind": "CapstanCache", "url": "http://127.0.0.1:1", "cache": "c", "token": "t" },
          "broken": { "kind": "NixCache", "publicKeys": [] } }
        """.write(toFile: caches, atomically: true, encoding: .utf8)
        let result = try fixture.runEffect("effect", ["--binary-caches", caches])
        #expect(result.status != 0)
        #expect(
            result.stderrString.contains(
                "Could not parse binary caches file \(caches): entry \"broken\": \"storeURI\" is missing"),
            "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: marker))
    }
}
