import Foundation
import TestSupport
import Testing

@testable import NixCore

private func trimmed(_ result: ProcessResult) -> String {
    result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The NAR SHA-256 of a file or tree as nix computes it (the NAR writer is tested on its own).
private func narHash(_ path: String) throws -> NixHash {
    try NixHash(parsing: trimmed(ProcessRunner.nix(["nix", "hash", "path", "--base16", path])), algorithm: .sha256)
}

@Test("Source paths match nix-store --add for a file")
func sourcePathOfFile() throws {
    let dir = try TemporaryDirectory()
    let file = try NixFixtures.write("source file \(NixFixtures.nonce())\n", named: "data.txt", in: dir)
    let expected = try NixFixtures.addToStore(file)
    #expect(try StorePath.source(name: "data.txt", narHash: narHash(file)).path == expected)
}

@Test("Source paths match nix-store --add for a directory")
func sourcePathOfDirectory() throws {
    let dir = try TemporaryDirectory()
    let tree = try NixFixtures.makeTree(named: "tree", in: dir)
    let expected = try NixFixtures.addToStore(tree)
    #expect(try StorePath.source(name: "tree", narHash: narHash(tree)).path == expected)
}

/// Evaluates an expression yielding a string and returns it without the quotes.
private func evalString(_ expression: String) throws -> String {
    let output = trimmed(try ProcessRunner.nix(["nix-instantiate", "--eval", "-E", expression]))
    return String(output.dropFirst().dropLast())
}

@Test("Text paths match builtins.toFile", arguments: ["", "hello", "line one\nline two\n", "\"quoted\" ${x} \\"])
func textPathMatchesToFile(text: String) throws {
    let contents = text + NixFixtures.nonce()
    // Pass the text through a file so no Nix string escaping is involved.
    let dir = try TemporaryDirectory()
    let file = try NixFixtures.write(contents, named: "input", in: dir)
    let expected = try evalString("builtins.toFile \"note.txt\" (builtins.readFile \(file))")
    #expect(try StorePath.text(name: "note.txt", contents: contents).path == expected)
}

@Test("Text paths with references match builtins.toFile of interpolated store paths")
func textPathWithReferences() throws {
    let nonce = NixFixtures.nonce()
    let expected = try evalString(
        """
        let b = builtins.toFile "b" "b\(nonce)"; a = builtins.toFile "a" "a\(nonce)";
        in builtins.toFile "outer" "uses ${b} and ${a}"
        """)
    let a = try StorePath.text(name: "a", contents: "a\(nonce)")
    let b = try StorePath.text(name: "b", contents: "b\(nonce)")
    let outer = try StorePath.text(name: "outer", contents: "uses \(b.path) and \(a.path)", references: [b, a])
    #expect(outer.path == expected)
}

@Test("Flat fixed-output paths match nix-store --add-fixed", arguments: [HashAlgorithm.sha256, .sha1, .sha512, .md5])
func flatFixedOutput(algorithm: HashAlgorithm) throws {
    let dir = try TemporaryDirectory()
    let contents = "fixed \(algorithm) \(NixFixtures.nonce())"
    let file = try NixFixtures.write(contents, named: "fixed.bin", in: dir)
    let expected = trimmed(try ProcessRunner.nix(["nix-store", "--add-fixed", algorithm.rawValue, file]))
    let hash = NixHasher.hash(algorithm, Array(contents.utf8))
    #expect(try StorePath.fixedOutput(name: "fixed.bin", method: .flat, hash: hash).path == expected)
}

@Test("Recursive fixed-output paths match nix-store --add-fixed --recursive", arguments: [HashAlgorithm.sha256, .sha1])
func recursiveFixedOutput(algorithm: HashAlgorithm) throws {
    let dir = try TemporaryDirectory()
    let tree = try NixFixtures.makeTree(named: "fixedtree", in: dir)
    let expected = trimmed(
        try ProcessRunner.nix(["nix-store", "--add-fixed", "--recursive", algorithm.rawValue, tree]))
    let hash = try NixHash(
        parsing: trimmed(
            try ProcessRunner.nix(["nix", "hash", "path", "--type", algorithm.rawValue, "--base16", tree])),
        algorithm: algorithm)
    #expect(try StorePath.fixedOutput(name: "fixedtree", method: .recursive, hash: hash).path == expected)
}

@Test("makeStorePath refuses names Nix would refuse")
func makeRejectsBadName() {
    let hash = NixHasher.hash(.sha256, [])
    #expect(throws: StorePathError.self) { try StorePath.make(type: "source", innerHash: hash, name: "bad name") }
    #expect(throws: StorePathError.self) { try StorePath.text(name: ".dot", contents: "") }
}
