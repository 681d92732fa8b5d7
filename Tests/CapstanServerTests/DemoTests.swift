import Foundation
import Testing
import TestSupport

/// README's "Try it" stays true: scripts/demo runs from start to finish.
@Suite struct DemoTests {
    @Test func demoScriptDeploysItsToyConfiguration() throws {
        let script = PackagingTests.root + "/scripts/demo"
        var environment = TestEnvironment.nixEnvironment
        environment["CAPSTAN_BIN"] = TestEnvironment.capstanBinary
        let result = try ProcessRunner.run([script], environment: environment)
        #expect(result.status == 0, "\(result.stdoutString)\n\(result.stderrString)")
        #expect(result.stdoutString.contains("Succeeded"))
        #expect(result.stdoutString.contains("[demo-machine] activating /nix/store/"))
        #expect(result.stdoutString.contains("Dashboard: http://127.0.0.1:"))
    }
}
