import Foundation
import TestSupport
import Testing

/// Without a capstan CLI (no nixpkgs package, none given), effects stop at evaluation and say how
/// to give one, instead of failing when they run with `capstan: not found` (exit 127).
@Suite struct MissingCapstanTests {
    static let fix = "nix-store --add $(command -v capstan)"

    /// A project whose `default.nix` imports the library with no nixpkgs and no capstan.
    func project() throws -> EffectFixture {
        let fixture = try EffectFixture()
        let expression = """
            let lib = import \(EffectFixture.library) { pkgs = null; };
            in {
              deploy = lib.runCachixDeploy { deploy.agents.web1 = "/nix/store/00000000000000000000000000000000-web1"; };
              plain = lib.mkEffect { effectScript = "echo ran"; };
            }
            """
        try expression.write(toFile: fixture.project + "/default.nix", atomically: true, encoding: .utf8)
        return fixture
    }

    @Test(arguments: [("deploy", "runCachixDeploy"), ("plain", "mkEffect")])
    func evaluationNamesTheFix(attribute: String, function: String) throws {
        let fixture = try project()
        let result = try ProcessRunner.run(
            ["nix-instantiate", fixture.project + "/default.nix", "-A", attribute],
            environment: TestEnvironment.nixEnvironment)
        #expect(result.status != 0, "evaluated without a capstan: \(result.output)")
        #expect(result.stderrString.contains("\(function): no capstan CLI for the effect to run"), "\(result.output)")
        #expect(result.stderrString.contains("capstan = builtins.storePath"), "\(result.output)")
        #expect(result.stderrString.contains(Self.fix), "\(result.output)")
    }

    @Test func effectRunStopsBeforeRunning() throws {
        let fixture = try project()
        let result = try fixture.runEffect("deploy")
        #expect(result.status != 0 && result.status != 127, "\(result.output)")
        #expect(result.stderrString.contains(Self.fix), "\(result.output)")
        #expect(!result.output.contains("not found"), "\(result.output)")
    }
}
