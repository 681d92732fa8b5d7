import Foundation
import TestSupport
import Testing

/// The Nix modules parse, and their options and generated units evaluate with the Nix here
/// (no nixpkgs: `lib` and `pkgs` are stood in for by nix/modules/tests/eval-modules.nix).
@Suite struct PackagingTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func everyNixFileParses() throws {
        let files = try FileManager.default.subpathsOfDirectory(atPath: Self.root + "/nix").filter {
            $0.hasSuffix(".nix")
        }
        #expect(files.count >= 5)
        for file in files {
            let result = try ProcessRunner.run(
                ["nix-instantiate", "--parse", Self.root + "/nix/" + file], environment: TestEnvironment.nixEnvironment)
            #expect(result.status == 0, "\(file): \(result.stderrString)")
        }
    }

    @Test func modulesEvaluateToTheExpectedUnits() throws {
        let output = try ProcessRunner.nix([
            "nix-instantiate", "--eval", "--strict", "--json", Self.root + "/nix/modules/tests/eval-modules.nix",
        ]).stdout
        let value = try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
        let agentOptions = value["nixosAgentOptions"] as? [String] ?? []
        for option in ["enable", "name", "profile", "url", "credentialsFile", "package"] {
            #expect(agentOptions.contains(option), "services.capstan-agent.\(option) is missing")
        }
        #expect(value["serverOptions"] as? [String] == ["enable", "environmentFile", "package", "settings"])
        let unit = try #require(value["nixosAgentUnit"] as? [String: Any])
        // Deployments must survive the agent's own restart during activation.
        #expect(unit["KillMode"] as? String == "process")
        #expect(value["nixosAgentRestartIfChanged"] as? Bool == false)
        #expect(unit["EnvironmentFile"] as? String == "/etc/capstan-agent/credentials")
        let exec = unit["ExecStart"] as? String ?? ""
        #expect(exec.contains("'deploy' 'agent' 'web1' 'system' '--url' 'https://capstan.example.org'"))
        #expect(exec.contains("'--activation' 'two-phase' '--activation-timeout' '5m' '--check-grace' '45s'"))
        #expect(exec.contains(#"'--check' '{"systemd":"no-failed-units"}'"#), "\(exec)")
        #expect(
            exec.contains(
                "'--reboot-policy' 'when-needed' '--reboot-command' 'systemctl reboot' '--maintenance-window' 'Sun 02:00-04:00'"
            ), "\(exec)")
        #expect(exec.contains(#"'--check' '{"http":"http://127.0.0.1:8080/","status":200}'"#), "\(exec)")
        #expect(
            (value["homeManagerLauncher"] as? String ?? "").contains(
                "'--profiles-dir' '/home/alice/.local/state/nix/profiles'"))
        #expect((value["darwinLauncher"] as? String ?? "").contains(". '/etc/capstan-agent/credentials'"))
        let server = value["serverExec"] as? String ?? ""
        #expect(server.contains("serve --config"))
        #expect(server.contains("public_url = \"https://capstan.example.org\""))
    }

    @Test func agentCommandLineOfTheModulesIsAccepted() throws {
        // The arguments the modules generate are ones `capstan deploy agent` knows.
        let help = try ProcessRunner.run([TestEnvironment.capstanBinary, "deploy", "agent", "--help"], check: true)
        for option in [
            "--url", "--state-dir", "--verify-timeout", "--profiles-dir", "--activation", "--activation-timeout",
            "--check", "--check-grace", "--reboot-policy", "--reboot-command", "--maintenance-window",
        ] {
            #expect(help.stdoutString.contains(option))
        }
    }
}
