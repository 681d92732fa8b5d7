import Foundation
import TestSupport
import Testing

@testable import NixCore

private func flipOneByte(ofSignature sig: String) throws -> String {
    let colon = try #require(sig.firstIndex(of: ":"))
    var bytes = try #require(Data(base64Encoded: String(sig[sig.index(after: colon)...])))
    bytes[10] ^= 0x01
    return "\(sig[..<colon]):\(bytes.base64EncodedString())"
}

@Test("A generated key signs, and its public key verifies only the signed fingerprint")
func signAndVerify() throws {
    let key = try NixSecretKey.generate(name: "test-cache-1")
    let signature = key.sign(fingerprint: "1;/nix/store/x;sha256:y;1;")
    #expect(signature.hasPrefix("test-cache-1:"))
    #expect(key.publicKey.verify(fingerprint: "1;/nix/store/x;sha256:y;1;", signature: signature))
    #expect(!key.publicKey.verify(fingerprint: "1;/nix/store/x;sha256:y;2;", signature: signature))
    #expect(
        !key.publicKey.verify(
            fingerprint: "1;/nix/store/x;sha256:y;1;", signature: try flipOneByte(ofSignature: signature)))
    let renamed = "other:" + signature.dropFirst("test-cache-1:".count)
    #expect(!key.publicKey.verify(fingerprint: "1;/nix/store/x;sha256:y;1;", signature: renamed))
    #expect(!key.publicKey.verify(fingerprint: "x", signature: "garbage"))
    let other = try NixSecretKey.generate(name: "test-cache-1")
    #expect(!other.publicKey.verify(fingerprint: "1;/nix/store/x;sha256:y;1;", signature: signature))
}

@Test("Keys round-trip through Nix's name:base64 text form")
func keyTextRoundTrip() throws {
    let key = try NixSecretKey.generate(name: "rt")
    let parsed = try NixSecretKey(parsing: key.rendered + "\n")
    #expect(parsed.bytes == key.bytes)
    #expect(parsed.name == "rt")
    #expect(try NixPublicKey(parsing: key.publicKey.rendered) == key.publicKey)
    #expect(key.rendered.hasPrefix("rt:"))
    #expect(Data(base64Encoded: String(key.publicKey.rendered.dropFirst(3)))?.count == 32)
}

private let badPublicKeyCases: [(String, String)] = [
    ("", "expected 'name:base64'"),
    ("nocolon", "expected 'name:base64'"),
    (":AAAA", "expected 'name:base64'"),
    ("name:", "expected 'name:base64'"),
    ("name:!!!!", "expected 'name:base64'"),
    ("name:" + Data(count: 31).base64EncodedString(), "has 31 bytes"),
    ("bad name:" + Data(count: 32).base64EncodedString(), "must not contain"),
]

@Test(
    "Bad key text is refused with a clear reason", arguments: badPublicKeyCases)
func badPublicKeys(text: String, expected: String) {
    #expect {
        try NixPublicKey(parsing: text)
    } throws: { error in
        "\(error)".contains(expected)
    }
}

@Test("A secret key whose halves do not match, or of the wrong size, is refused without echoing it")
func badSecretKeys() throws {
    let key = try NixSecretKey.generate(name: "k")
    var bytes = key.bytes
    bytes[40] ^= 1
    let corrupt = "k:" + Data(bytes).base64EncodedString()
    #expect {
        try NixSecretKey(parsing: corrupt)
    } throws: { error in
        "\(error)".contains("does not belong to its seed") && !"\(error)".contains(corrupt)
    }
    let unnamed = Data(key.bytes).base64EncodedString()
    #expect {
        try NixSecretKey(parsing: unnamed)
    } throws: { error in
        "\(error)".contains("expected 'name:base64'") && !"\(error)".contains(unnamed)
    }
    #expect(!"\(key)".contains(unnamed) && "\(key)".contains("'k'"))
    #expect {
        try NixSecretKey(parsing: "k:" + Data(count: 32).base64EncodedString())
    } throws: { error in
        "\(error)".contains("has 32 bytes")
    }
}

@Test("Key files: the secret one is created 0600, existing files are kept unless overwriting is asked for")
func keyFiles() throws {
    let dir = try TemporaryDirectory()
    let key = try NixSecretKey.generate(name: "files")
    try key.write(to: dir.sub("secret"))
    try key.publicKey.write(to: dir.sub("public"))
    let attributes = try FileManager.default.attributesOfItem(atPath: dir.sub("secret"))
    #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    #expect(try NixSecretKey(contentsOfFile: dir.sub("secret")).bytes == key.bytes)
    #expect(try NixPublicKey(contentsOfFile: dir.sub("public")) == key.publicKey)
    #expect(throws: NixKeyError.self) { try key.write(to: dir.sub("secret")) }
    try key.write(to: dir.sub("secret"), overwrite: true)
    #expect {
        try NixSecretKey(contentsOfFile: dir.sub("missing"))
    } throws: { error in
        "\(error)".contains(dir.sub("missing"))
    }
}

@Test("NarInfo.sign adds one signature and verify needs a trusted key")
func narInfoSigning() throws {
    let key = try NixSecretKey.generate(name: "cache-a")
    let stranger = try NixSecretKey.generate(name: "cache-b")
    var info = NarInfo(
        storePath: try StorePath(baseName: "0c6kzph7l0dcbfmjap64f0czdafn3b7x-x"), url: "nar/x.nar",
        narHash: NixHasher.hash(.sha256, [1]), narSize: 96)
    #expect(!info.verify(trusting: [key.publicKey]))
    info.sign(with: key)
    info.sign(with: key)
    #expect(info.sigs.count == 1)
    #expect(info.verify(trusting: [key.publicKey]))
    #expect(info.verify(trusting: [stranger.publicKey, key.publicKey]))
    #expect(!info.verify(trusting: [stranger.publicKey]))
    #expect(!info.verify(trusting: []))
    var tampered = info
    tampered.narSize = 97
    #expect(!tampered.verify(trusting: [key.publicKey]))
    let reparsed = try NarInfo(parsing: info.rendered())
    #expect(reparsed.verify(trusting: [key.publicKey]))
}
