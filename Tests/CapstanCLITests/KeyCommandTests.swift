import Foundation
import TestSupport
import Testing

private func capstan(_ arguments: [String]) throws -> ProcessResult {
    try ProcessRunner.run([TestEnvironment.capstanBinary] + arguments)
}

private func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

@Test("capstan key generate writes keys nix signs and verifies with")
func generatedKeysWorkWithNix() throws {
    let dir = try TemporaryDirectory()
    let result = try capstan([
        "key", "generate", "cli-test-1", "--secret-file", dir.sub("secret"), "--public-file", dir.sub("public"),
    ])
    #expect(result.status == 0, "\(result.stderrString)")
    let printed = trimmed(result.stdoutString)
    #expect(printed.hasPrefix("cli-test-1:"))
    #expect(trimmed(try String(contentsOfFile: dir.sub("public"), encoding: .utf8)) == printed)
    let mode = try FileManager.default.attributesOfItem(atPath: dir.sub("secret"))[.posixPermissions] as? NSNumber
    #expect(mode?.intValue == 0o600)

    let file = try NixFixtures.write("cli key \(NixFixtures.nonce())", named: "f", in: dir)
    let path = try NixFixtures.addToStore(file)
    try ProcessRunner.nix(["nix", "store", "sign", "--key-file", dir.sub("secret"), path])
    let verified = try ProcessRunner.run(
        ["nix", "store", "verify", "--sigs-needed", "1", "--option", "trusted-public-keys", printed, path],
        environment: TestEnvironment.nixEnvironment)
    #expect(verified.status == 0, "\(verified.stderrString)")

    let shown = try capstan(["key", "public", dir.sub("secret")])
    #expect(trimmed(shown.stdoutString) == printed)
}

@Test("capstan key generate refuses to overwrite key files unless --force")
func generateRefusesOverwrite() throws {
    let dir = try TemporaryDirectory()
    let args = ["key", "generate", "k", "--secret-file", dir.sub("secret"), "--public-file", dir.sub("public")]
    let first = try capstan(args)
    #expect(first.status == 0)
    let original = try String(contentsOfFile: dir.sub("secret"), encoding: .utf8)
    let again = try capstan(args)
    #expect(again.status != 0)
    #expect(again.stderrString.contains(dir.sub("secret")) && again.stderrString.contains("--force"))
    #expect(try String(contentsOfFile: dir.sub("secret"), encoding: .utf8) == original)
    let forced = try capstan(args + ["--force"])
    #expect(forced.status == 0, "\(forced.stderrString)")
    #expect(try String(contentsOfFile: dir.sub("secret"), encoding: .utf8) != original)
}

@Test("capstan key public prints the same public key nix generated")
func publicKeyOfNixKey() throws {
    let dir = try TemporaryDirectory()
    try ProcessRunner.nix(["nix-store", "--generate-binary-cache-key", "nixmade-1", dir.sub("s"), dir.sub("p")])
    let shown = try capstan(["key", "public", dir.sub("s")])
    #expect(shown.status == 0, "\(shown.stderrString)")
    #expect(trimmed(shown.stdoutString) == trimmed(try String(contentsOfFile: dir.sub("p"), encoding: .utf8)))

    let missing = try capstan(["key", "public", dir.sub("nope")])
    #expect(missing.status != 0)
    #expect(missing.stderrString.contains(dir.sub("nope")))
}
