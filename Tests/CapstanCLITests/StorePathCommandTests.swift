import Foundation
import TestSupport
import Testing

private func capstan(_ arguments: [String]) throws -> ProcessResult {
    try ProcessRunner.run([TestEnvironment.capstanBinary] + arguments)
}

private func trimmed(_ text: String) -> String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

@Test("capstan store-path text agrees with builtins.toFile")
func storePathText() throws {
    let dir = try TemporaryDirectory()
    let file = try NixFixtures.write("text \(NixFixtures.nonce())\n", named: "t", in: dir)
    let nix = trimmed(
        try ProcessRunner.nix([
            "nix-instantiate", "--eval", "-E", "builtins.toFile \"note\" (builtins.readFile \(file))",
        ])
        .stdoutString)
    let ours = try capstan(["store-path", "text", file, "--name", "note"])
    #expect(ours.status == 0, "\(ours.stderrString)")
    #expect("\"\(trimmed(ours.stdoutString))\"" == nix)
}

@Test("capstan store-path fixed and source agree with nix-store --add-fixed and --add")
func storePathFixedAndSource() throws {
    let dir = try TemporaryDirectory()
    let file = try NixFixtures.write("fixed \(NixFixtures.nonce())", named: "blob", in: dir)
    let flat = trimmed(try ProcessRunner.nix(["nix-store", "--add-fixed", "sha1", file]).stdoutString)
    #expect(trimmed(try capstan(["store-path", "fixed", file, "--algorithm", "sha1"]).stdoutString) == flat)

    let tree = try NixFixtures.makeTree(named: "tree", in: dir)
    let narHash = trimmed(try ProcessRunner.nix(["nix", "hash", "path", "--sri", tree]).stdoutString)
    let added = try NixFixtures.addToStore(tree)
    let source = try capstan(["store-path", "source", "--nar-hash", narHash, "--name", "tree"])
    #expect(trimmed(source.stdoutString) == added, "\(source.stderrString)")
    let recursive = try capstan(["store-path", "fixed", "--hash", narHash, "--recursive", "--name", "tree"])
    #expect(trimmed(recursive.stdoutString) == added)

    let bad = try capstan(["store-path", "source", "--nar-hash", "sha256:nothex", "--name", "tree"])
    #expect(bad.status != 0)
    #expect(bad.stderrString.contains("sha256:nothex"))
}

@Test("capstan store-path text --reference agrees with builtins.toFile of an interpolated path")
func storePathTextWithReference() throws {
    let nonce = NixFixtures.nonce()
    func eval(_ expression: String) throws -> String {
        String(
            trimmed(try ProcessRunner.nix(["nix-instantiate", "--eval", "-E", expression]).stdoutString).dropFirst()
                .dropLast())
    }
    let dep = try eval("builtins.toFile \"dep\" \"d\(nonce)\"")
    let outer = try eval("builtins.toFile \"outer\" \"x ${builtins.toFile \"dep\" \"d\(nonce)\"}\"")
    let dir = try TemporaryDirectory()
    let file = try NixFixtures.write("x \(dep)", named: "outer", in: dir)
    let ours = try capstan(["store-path", "text", file, "--reference", dep])
    #expect(ours.status == 0, "\(ours.stderrString)")
    #expect(trimmed(ours.stdoutString) == outer)
}

@Test(
    "capstan store-path refuses contradictory or incomplete options with a clear message",
    arguments: [
        (["store-path", "fixed"], "give a FILE to hash, or --hash"),
        (["store-path", "fixed", "FILE", "--hash", "sha256-x"], "either a FILE or --hash"),
        (["store-path", "fixed", "FILE", "--recursive"], "--recursive needs the NAR hash"),
        (["store-path", "fixed", "FILE", "--algorithm", "crc32"], "unknown --algorithm 'crc32'"),
        (["store-path", "fixed", "--hash", "sha256-x"], "--name is required"),
        (["store-path", "text", "/nonexistent/file"], "cannot read '/nonexistent/file'"),
        (["store-path", "text", "FILE", "--reference", "/tmp/x"], "invalid store path '/tmp/x'"),
        (["store-path", "text", "FILE", "--name", ".dot"], "starts with '.'"),
    ] as [([String], String)])
func storePathArgumentErrors(arguments: [String], expected: String) throws {
    let dir = try TemporaryDirectory()
    let file = try NixFixtures.write("any", named: "file", in: dir)
    let result = try capstan(arguments.map { $0 == "FILE" ? file : $0 })
    #expect(result.status != 0)
    #expect(result.stderrString.contains(expected), "\(result.stderrString)")
}
