import Foundation
import TestSupport
import Testing

@Suite struct WatchExecTests {
    @Test func pushesWhatTheCommandBuilt() throws {
        let fixture = try EffectFixture()
        let server = try fixture.startServer()
        let nonce = NixFixtures.nonce()
        let file = try NixFixtures.write(
            """
            let \(NixFixtures.mkBinding)
              dep = mk "watched-dep" "echo \(nonce) > $out";
            in mk "watched" "echo ${dep} > $out"
            """, named: "watched.nix", in: fixture.temp)
        let result = try server.admin.run(
            ["watch-exec", "fleet", "--", "nix-build", "--no-out-link", file], check: false)
        #expect(result.status == 0, "\(result.stderrString)")
        let top = result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
        // Both paths the command added were pushed (other store activity meanwhile may add more).
        #expect(result.stderrString.contains("-watched-dep ("), "\(result.stderrString)")
        #expect(result.stderrString.contains("-watched ("), "\(result.stderrString)")
        let hash = String((top as NSString).lastPathComponent.prefix(32))
        #expect(try HTTP.request("GET", "\(server.server.url)/cache/fleet/\(hash).narinfo").status == 200)
        let failing = try server.admin.run(["watch-exec", "fleet", "--", "sh", "-c", "exit 4"], check: false)
        #expect(failing.status == 4)
    }
}
