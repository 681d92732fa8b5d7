import Foundation
import TestSupport
import Testing

/// `capstan secret` writes the Hercules CI agent's secrets.json.
@Suite struct SecretCommandTests {
    @Test func addWritesNestedDataIndentedWithATrailingNewlineAndMode0600() throws {
        let fixture = try EffectFixture()
        try fixture.addSecret(
            "default-cachix-activate",
            [
                "--string", "cachixActivateToken", "tok", "--json", "extra.port", "8080", "--owner", "org", "--repo",
                "repo",
                "--default-branch-only",
            ])
        let text = try String(contentsOfFile: fixture.secretsFile, encoding: .utf8)
        #expect(
            text == """
                {
                  "default-cachix-activate": {
                    "condition": {
                      "and": [
                        {
                          "isOwner": "org"
                        },
                        {
                          "isRepo": "repo"
                        },
                        "isDefaultBranch"
                      ]
                    },
                    "data": {
                      "cachixActivateToken": "tok",
                      "extra": {
                        "port": 8080
                      }
                    },
                    "kind": "Secret"
                  }
                }

                """)
        let mode = try FileManager.default.attributesOfItem(atPath: fixture.secretsFile)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test func addRefusesToOverwrite() throws {
        let fixture = try EffectFixture()
        try fixture.addSecret("s", ["--string", "a", "1"])
        let before = try String(contentsOfFile: fixture.secretsFile, encoding: .utf8)
        let again = try fixture.capstan(["secret", "add", "s", "--secrets", fixture.secretsFile, "--string", "a", "2"])
        #expect(again.status != 0)
        #expect(again.stderrString.contains("Secret s already exists"), "\(again.stderrString)")
        #expect(try String(contentsOfFile: fixture.secretsFile, encoding: .utf8) == before)
    }

    @Test func passwordAndStringFile() throws {
        let fixture = try EffectFixture()
        let file = try NixFixtures.write("from a file", named: "value.txt", in: fixture.temp)
        let result = try fixture.capstan(
            ["secret", "add", "s", "--secrets", fixture.secretsFile, "--password", "pw", "--string-file", "f", file],
            input: Data("hunter2\n".utf8))
        #expect(result.status == 0, "\(result.stderrString)")
        let secrets = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: fixture.secretsFile)))
        let data = ((secrets as? [String: Any])?["s"] as? [String: Any])?["data"] as? [String: String]
        #expect(data == ["pw": "hunter2", "f": "from a file"])
    }

    @Test func secretsFileDefaultsToTheEnvironmentThenXDGConfig() throws {
        let fixture = try EffectFixture()
        let result = try fixture.capstan(["secret", "add", "s", "--string", "a", "1"])
        #expect(result.status == 0, "\(result.stderrString)")
        #expect(FileManager.default.fileExists(atPath: fixture.temp.sub("config-home/capstan/secrets.json")))
        let initialised = try fixture.capstan(["secret", "init", "--secrets", fixture.temp.sub("fresh/secrets.json")])
        #expect(initialised.status == 0)
        #expect(try String(contentsOfFile: fixture.temp.sub("fresh/secrets.json"), encoding: .utf8) == "{}\n")
    }

    @Test func echoPrintsTheSecretWithoutWriting() throws {
        let fixture = try EffectFixture()
        let result = try fixture.capstan(["secret", "echo", "--string", "a.b", "x", "--condition", "{\"or\": []}"])
        #expect(result.status == 0, "\(result.stderrString)")
        #expect(
            result.stdoutString
                == "{\n  \"condition\": {\n    \"or\": []\n  },\n  \"data\": {\n    \"a\": {\n      \"b\": \"x\"\n    }\n  },\n  \"kind\": \"Secret\"\n}\n"
        )
        let unknown = try fixture.capstan(["secret", "echo", "--string", "a", "x", "--condition", "{\"not\": true}"])
        #expect(unknown.status != 0)
        #expect(unknown.stderrString.contains("unknown condition {\"not\":true}"), "\(unknown.stderrString)")
    }
}
