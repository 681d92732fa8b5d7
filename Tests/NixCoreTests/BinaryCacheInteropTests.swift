import Foundation
import TestSupport
import Testing

@testable import NixCore

private func trimmed(_ result: ProcessResult) -> String {
    result.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Writes a file:// binary cache by hand: nix-cache-info, the NAR as `nix-store --dump` gives it, and a
/// narinfo built and signed by Capstan.
private func publish(
    _ storePath: StorePath, to cache: String, signedWith key: NixSecretKey, tamper: Bool = false
) throws -> NarInfo {
    let fm = FileManager.default
    try fm.createDirectory(atPath: cache + "/nar", withIntermediateDirectories: true)
    try Data("StoreDir: /nix/store\n".utf8).write(to: URL(fileURLWithPath: cache + "/nix-cache-info"))
    let nar = try ProcessRunner.nix(["nix-store", "--dump", storePath.path]).stdout
    let narHash = NixHasher.hash(.sha256, nar)
    let url = "nar/\(narHash.digest(.nix32)).nar"
    try nar.write(to: URL(fileURLWithPath: cache + "/" + url))
    let references = try trimmed(ProcessRunner.nix(["nix-store", "--query", "--references", storePath.path]))
        .split(separator: "\n").map { try StorePath(parsing: String($0)) }
    var info = NarInfo(
        storePath: storePath, url: url, compression: "none", fileHash: narHash, fileSize: UInt64(nar.count),
        narHash: narHash, narSize: UInt64(nar.count), references: references)
    info.sign(with: key)
    if tamper { info.sigs = [try flipOneByte(ofSignature: info.sigs[0])] }
    try Data(info.rendered().utf8).write(to: URL(fileURLWithPath: "\(cache)/\(storePath.hashPart).narinfo"))
    return info
}

private func flipOneByte(ofSignature sig: String) throws -> String {
    let colon = try #require(sig.firstIndex(of: ":"))
    var bytes = try #require(Data(base64Encoded: String(sig[sig.index(after: colon)...])))
    bytes[0] ^= 0x80
    return "\(sig[..<colon]):\(bytes.base64EncodedString())"
}

/// `nix copy --from file://cache path` with signatures required from exactly `publicKey`.
private func copyFromCache(_ cache: String, _ path: StorePath, trusting publicKey: String) throws -> ProcessResult {
    try ProcessRunner.run(
        [
            "nix", "copy", "--from", "file://\(cache)", path.path,
            "--option", "trusted-public-keys", publicKey, "--option", "require-sigs", "true",
        ], environment: TestEnvironment.nixEnvironment)
}

/// Creates two text paths with `nix-instantiate`, the outer one referring to the inner one.
private func makePathsWithReference() throws -> (outer: StorePath, inner: StorePath) {
    let nonce = NixFixtures.nonce()
    let output = trimmed(
        try ProcessRunner.nix([
            "nix-instantiate", "--read-write-mode", "--eval", "-E",
            "let dep = builtins.toFile \"dep\" \"dep \(nonce)\"; in builtins.toFile \"outer\" \"uses ${dep}\"",
        ]))
    let outer = try StorePath(parsing: String(output.dropFirst().dropLast()))
    let inner = try StorePath.text(name: "dep", contents: "dep \(nonce)")
    #expect(NixFixtures.isValid(outer.path) && NixFixtures.isValid(inner.path))
    return (outer, inner)
}

@Test("nix substitutes from a cache Capstan wrote and signed with a key nix generated")
func nixAcceptsCapstanSignedCache() throws {
    let dir = try TemporaryDirectory()
    let name = "capstan-test-\(NixFixtures.nonce().prefix(8))"
    try ProcessRunner.nix(["nix-store", "--generate-binary-cache-key", name, dir.sub("secret"), dir.sub("public")])
    let key = try NixSecretKey(contentsOfFile: dir.sub("secret"))
    let publicKey = try NixPublicKey(contentsOfFile: dir.sub("public"))
    #expect(key.publicKey == publicKey)

    let file = try NixFixtures.write("substitute me \(NixFixtures.nonce())\n", named: "payload", in: dir)
    let added = try StorePath(parsing: NixFixtures.addToStore(file))
    let (outer, inner) = try makePathsWithReference()

    let good = dir.sub("cache")
    let bad = dir.sub("cache-tampered")
    for path in [added, outer, inner] {
        #expect(try publish(path, to: good, signedWith: key).verify(trusting: [publicKey]))
        #expect(try !publish(path, to: bad, signedWith: key, tamper: true).verify(trusting: [publicKey]))
    }
    #expect(
        try NarInfo(parsing: String(contentsOfFile: good + "/\(outer.hashPart).narinfo", encoding: .utf8))
            .references == [inner])
    for path in [added, outer, inner] { try NixFixtures.delete(path.path) }

    for path in [added, outer] {
        let refused = try copyFromCache(bad, path, trusting: publicKey.rendered)
        #expect(refused.status != 0, "nix accepted a tampered signature for \(path)")
        #expect(refused.stderrString.contains("signature"), "\(refused.stderrString)")
        #expect(!NixFixtures.isValid(path.path))
    }
    for path in [added, outer] {
        let accepted = try copyFromCache(good, path, trusting: publicKey.rendered)
        #expect(accepted.status == 0, "\(accepted.stderrString)")
        #expect(NixFixtures.isValid(path.path))
    }
    #expect(NixFixtures.isValid(inner.path), "the reference came along with its referrer")
}

@Test("Capstan reads and verifies the narinfo nix writes when it signs a cache")
func capstanVerifiesNixSignedCache() throws {
    let dir = try TemporaryDirectory()
    try ProcessRunner.nix([
        "nix-store", "--generate-binary-cache-key", "nix-signed-1", dir.sub("secret"), dir.sub("public"),
    ])
    let publicKey = try NixPublicKey(contentsOfFile: dir.sub("public"))
    let (outer, inner) = try makePathsWithReference()
    let cache = dir.sub("cache")
    try ProcessRunner.nix([
        "nix", "copy", "--to", "file://\(cache)?secret-key=\(dir.sub("secret"))&compression=none", outer.path,
    ])
    let text = try String(contentsOfFile: "\(cache)/\(outer.hashPart).narinfo", encoding: .utf8)
    let info = try NarInfo(parsing: text)
    #expect(info.storePath == outer)
    #expect(info.references == [inner])
    #expect(info.compression == "none")
    #expect(try info.rendered() == text, "Capstan renders nix's narinfo byte for byte")
    #expect(info.verify(trusting: [publicKey]))

    let nar = try ProcessRunner.nix(["nix-store", "--dump", outer.path]).stdout
    #expect(info.narHash == NixHasher.hash(.sha256, nar))
    #expect(info.narSize == UInt64(nar.count))

    var tampered = info
    tampered.sigs = try info.sigs.map(flipOneByte(ofSignature:))
    #expect(!tampered.verify(trusting: [publicKey]))
    let otherKey = try NixSecretKey.generate(name: "nix-signed-1").publicKey
    #expect(!info.verify(trusting: [otherKey]))
}

@Test("Key files Capstan writes work with nix store sign and as nix copy's secret-key")
func nixUsesCapstanKeyFiles() throws {
    let dir = try TemporaryDirectory()
    let key = try NixSecretKey.generate(name: "capstan-written-1")
    try key.write(to: dir.sub("secret"))
    let file = try NixFixtures.write("signed by nix with a capstan key \(NixFixtures.nonce())", named: "p", in: dir)
    let path = try StorePath(parsing: NixFixtures.addToStore(file))

    try ProcessRunner.nix(["nix", "store", "sign", "--key-file", dir.sub("secret"), path.path])
    let verified = try ProcessRunner.run(
        [
            "nix", "store", "verify", "--sigs-needed", "1", "--option", "trusted-public-keys",
            key.publicKey.rendered, path.path,
        ], environment: TestEnvironment.nixEnvironment)
    #expect(verified.status == 0, "\(verified.stderrString)")
    let nar = try ProcessRunner.nix(["nix-store", "--dump", path.path]).stdout
    let local = NarInfo(
        storePath: path, url: "-", narHash: NixHasher.hash(.sha256, nar), narSize: UInt64(nar.count))
    let sigs = try trimmed(ProcessRunner.nix(["nix", "path-info", "--sigs", path.path]))
    #expect(sigs.contains(key.sign(fingerprint: local.fingerprint)), "nix and Capstan make the same signature")

    let cache = dir.sub("cache")
    try ProcessRunner.nix([
        "nix", "copy", "--to", "file://\(cache)?secret-key=\(dir.sub("secret"))&compression=none", path.path,
    ])
    let info = try NarInfo(parsing: String(contentsOfFile: "\(cache)/\(path.hashPart).narinfo", encoding: .utf8))
    #expect(info.verify(trusting: [key.publicKey]))
    try NixFixtures.delete(path.path)
    let restored = try copyFromCache(cache, path, trusting: key.publicKey.rendered)
    #expect(restored.status == 0, "\(restored.stderrString)")
    #expect(NixFixtures.isValid(path.path))
}
