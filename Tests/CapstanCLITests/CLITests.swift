import Foundation
import TestSupport
import Testing

@Test func capstanPrintsHelp() throws {
    let result = try ProcessRunner.run([TestEnvironment.capstanBinary, "--help"], check: true)
    #expect(result.stdoutString.contains("USAGE: capstan"))
}

/// The completion scripts the README tells people to install parse in their shell and know the subcommands.
@Test func completionScriptsParseAndNameTheSubcommands() throws {
    let bash = try ProcessRunner.run(
        [TestEnvironment.capstanBinary, "--generate-completion-script", "bash"], check: true
    ).stdoutString
    for word in ["deploy", "cache", "push", "activate", "rollback"] {
        #expect(bash.contains(word), "the bash completion does not offer \(word)")
    }
    let script = FileManager.default.temporaryDirectory.appendingPathComponent("capstan-completion-\(getpid()).bash")
    try bash.write(to: script, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(at: script) }
    #expect(try ProcessRunner.run(["bash", "-n", script.path], check: false).status == 0)
}
