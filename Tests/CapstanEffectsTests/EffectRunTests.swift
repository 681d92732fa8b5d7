import Foundation
import TestSupport
import Testing

/// `capstan effect run` with mkEffect: secrets, conditions and the sandbox.
@Suite struct EffectRunTests {
    /// An effect that reads secret `s` (mapped as `token`) and prints its value.
    static let readsToken = """
        { effect = lib.mkEffect {
            secretsMap.token = "s";
            effectScript = ''
              echo "value=$(readSecretString token .value)"
            '';
          }; }
        """

    @Test func missingSecretsFile() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        let result = try fixture.runEffect("effect")
        #expect(result.status == 1)
        #expect(result.stderrString.contains("Secrets file \(fixture.secretsFile) does not exist"), "\(result.output)")
    }

    @Test func oneMalformedEntryFailsTheFile() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        try fixture.addSecret("s", ["--string", "value", "v"])
        var text = try String(contentsOfFile: fixture.secretsFile, encoding: .utf8)
        text = text.replacingOccurrences(
            of: "\"s\": {",
            with: "\"bad\": { \"kind\": \"Secret\", \"data\": {}, \"condition\": { \"not\": true } },\n  \"s\": {")
        try text.write(toFile: fixture.secretsFile, atomically: true, encoding: .utf8)
        let result = try fixture.runEffect("effect")
        #expect(result.status == 1)
        #expect(
            result.stderrString.contains(
                "Could not parse secrets file \(fixture.secretsFile): entry \"bad\": condition: unknown condition {\"not\":true}"
            ),
            "\(result.output)")
    }

    @Test func missingSecret() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        try fixture.addSecret("unrelated", ["--string", "value", "v"])
        let result = try fixture.runEffect("effect")
        #expect(result.status == 1)
        #expect(result.stderrString.contains("Secret s does not exist or access was denied"), "\(result.output)")
    }

    @Test func falseConditionLooksLikeAMissingSecret() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        try fixture.addSecret("s", ["--string", "value", "v", "--condition", "{\"isBranch\": \"main\"}"])
        let result = try fixture.runEffect("effect", ["--branch", "feature"])
        #expect(result.status == 1)
        #expect(result.stderrString.contains("Secret s does not exist or access was denied"), "\(result.output)")
        #expect(!result.stdoutString.contains("value="))
    }

    @Test func branchConditionHoldsOnThatBranch() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        try fixture.addSecret("s", ["--string", "value", "v-main", "--condition", "{\"isBranch\": \"main\"}"])
        let result = try fixture.runEffect("effect", ["--branch", "main"])
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdoutString.contains("value=v-main"))
    }

    @Test func ownerRepoAndDefaultBranchConditions() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        try fixture.addSecret(
            "s", ["--string", "value", "v", "--owner", "org", "--repo", "site", "--default-branch-only"])
        let context = ["--owner", "org", "--repo", "site", "--default-branch", "main"]
        #expect(try fixture.runEffect("effect", context + ["--branch", "main"]).status == 0)
        #expect(try fixture.runEffect("effect", context + ["--branch", "dev"]).status == 1)
        #expect(try fixture.runEffect("effect", context + ["--tag", "v1"]).status == 1)
    }

    @Test func secretWithoutConditionIsGrantedLocallyWithAWarning() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(Self.readsToken)
        try fixture.addSecret("s", ["--string", "value", "plain"])
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdoutString.contains("value=plain"))
        #expect(result.stderrString.contains("Secret s has no condition"))
    }

    @Test func exitCodeIsTheEffects() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject("{ effect = lib.mkEffect { effectScript = \"echo streamed; exit 7\"; }; }")
        let result = try fixture.runEffect("effect")
        #expect(result.status == 7)
        #expect(result.stdoutString.contains("streamed"))
    }

    @Test func refusesWhatIsNotAnEffect() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject("{ plain = mk \"plain\" \"mkdir $out\"; }")
        let result = try fixture.runEffect("plain")
        #expect(result.status == 1)
        #expect(result.stderrString.contains("plain is not an effect"), "\(result.output)")
    }

    @Test func phasesRunInOrderWithHooks() throws {
        let fixture = try EffectFixture()
        let names = [
            "init", "unpack", "patch", "getState", "userSetup", "priorCheck", "effect", "putState", "effectCheck",
        ]
        let scripts = names.map { "\($0)Script = \"echo \($0)\";" }.joined(separator: " ")
        try fixture.writeProject(
            """
            { effect = lib.mkEffect { \(scripts) preEffect = "echo pre"; postEffect = "echo post"; extra = "passed"; }; }
            """)
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        let expected = names.flatMap { $0 == "effect" ? ["pre", "effect", "post"] : [$0] }
        #expect(result.stdoutString.split(separator: "\n").map(String.init) == expected)
        let evaluated = try ProcessRunner.run(
            ["nix-instantiate", "--eval", "--json", "-A", "effect.extra", fixture.project + "/default.nix"],
            environment: TestEnvironment.nixEnvironment)
        #expect(evaluated.stdoutString == "\"passed\"")
    }

    /// What an effect derives from a secret stays private to it while it runs.
    @Test func effectFilesArePrivate() throws {
        let fixture = try EffectFixture()
        try fixture.writeProject(
            """
            { effect = lib.mkEffect {
                effectScript = ''
                  echo derived > derived
                  echo "umask=$(umask) build=$(stat -c %a /build) home=$(stat -c %a "$HOME") file=$(stat -c %a derived)"
                '';
              }; }
            """)
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdoutString.contains("umask=0077 build=700 home=700 file=600"), "\(result.output)")
    }

    @Test func sandboxKeepsTheStoreReadOnlyAndUnmappedSecretsOut() throws {
        let fixture = try EffectFixture()
        try fixture.addSecret("mapped", ["--string", "value", "visible-value"])
        try fixture.addSecret("unmapped", ["--string", "value", "hidden-value"])
        try fixture.writeProject(
            """
            { effect = lib.mkEffect {
                secretsMap.mine = "mapped";
                effectScript = ''
                  if touch /nix/store/capstan-effect-probe 2>/dev/null; then echo store=writable; else echo store=read-only; fi
                  echo "uid=$(id -u) pwd=$(pwd) home=$HOME tmp=$TMPDIR top=$NIX_BUILD_TOP in=$IN_HERCULES_CI_EFFECT"
                  echo "secrets=$HERCULES_CI_SECRETS_JSON"
                  cat "$HERCULES_CI_SECRETS_JSON"
                  readSecretString mine .value; echo
                  readSecretString unmapped .value || echo unmapped=unreadable
                  cat \(fixture.secretsFile) 2>/dev/null || echo host-file=unreadable
                  if echo x > /secrets/x 2>/dev/null; then echo secrets=writable; fi
                  touch /build/ok && echo build=writable
                  if read line; then echo stdin=data; else echo stdin=empty; fi
                '';
              }; }
            """)
        let result = try fixture.runEffect("effect")
        let out = result.stdoutString
        #expect(result.status == 0, "\(result.output)")
        #expect(out.contains("store=read-only"), "\(out)")
        #expect(out.contains("uid=1000 pwd=/build home=/build/home tmp=/build top=/build in=true"), "\(out)")
        #expect(out.contains("secrets=/secrets/secrets.json"))
        #expect(out.contains("\"mine\": {"), "\(out)")
        #expect(out.contains("visible-value"))
        #expect(!out.contains("hidden-value"), "\(out)")
        #expect(!out.contains("\"mapped\""))
        #expect(out.contains("unmapped=unreadable"))
        #expect(result.stderrString.contains("Could not find path .value in secret unmapped"))
        #expect(out.contains("host-file=unreadable"))
        #expect(!out.contains("secrets=writable"))
        #expect(out.contains("build=writable"))
        #expect(out.contains("stdin=empty"))
        #expect(!FileManager.default.fileExists(atPath: "/nix/store/capstan-effect-probe"))
    }

    @Test func readSecretJSONPrintsJSON() throws {
        let fixture = try EffectFixture()
        try fixture.addSecret("s", ["--json", "nested.list", "[1, \"two\"]", "--string", "nested.name", "n"])
        try fixture.writeProject(
            """
            { effect = lib.mkEffect {
                secretsMap.s = "s";
                effectScript = ''
                  readSecretJSON s .nested.list; echo
                  readSecretString s .nested.name; echo
                  readSecretString s .nested.missing || exit 0
                '';
              }; }
            """)
        let result = try fixture.runEffect("effect")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.stdoutString == "[1,\"two\"]\nn\n")
        #expect(result.stderrString.contains("Could not find path .nested.missing in secret s"))
    }
}
