import Foundation
import TestSupport
import Testing

@testable import NixCore

private let narHash = NixHasher.hash(.sha256, Array("nar".utf8))
private let storePath = try! StorePath(baseName: "0c6kzph7l0dcbfmjap64f0czdafn3b7x-hello-2.12.1")
private let otherPath = try! StorePath(baseName: "9df65igwjmf2wbw0gbrrgair6piqjgmi-glibc-2.38")
private let injected = "\nReferences: \(otherPath.baseName)\nSig: attacker-1:AAAA"

private func info(deriver: String? = nil, sigs: [String] = [], ca: String? = nil, url: String = "nar/x.nar")
    -> NarInfo
{
    NarInfo(
        storePath: storePath, url: url, narHash: narHash, narSize: 120, deriver: deriver, sigs: sigs, ca: ca)
}

/// The value must be refused three ways: by `validate()`, by the validating initialiser and by the renderer.
private func expectRefused(_ narInfo: NarInfo, mentioning field: String) {
    #expect(throws: NarInfoError.self, "validate() lets \(field) through") { try narInfo.validate() }
    #expect(throws: NarInfoError.self, "rendered() writes \(field)") { _ = try narInfo.rendered() }
    #expect(throws: NarInfoError.self, "init(validating:) accepts \(field)") {
        _ = try NarInfo(
            validating: narInfo.storePath, url: narInfo.url, compression: narInfo.compression,
            narHash: narInfo.narHash, narSize: narInfo.narSize, deriver: narInfo.deriver, sigs: narInfo.sigs,
            ca: narInfo.ca)
    }
    do {
        try narInfo.validate()
    } catch let error as NarInfoError {
        #expect(error.description.contains(field), "\(error.description)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test("A Deriver or CA carrying a second line (References: …) is refused, never rendered")
func injectedLinesAreRefused() {
    let deriver = info(deriver: "5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello-2.12.1.drv" + injected)
    expectRefused(deriver, mentioning: "Deriver")
    let ca = info(ca: "fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s" + injected)
    expectRefused(ca, mentioning: "CA")
    expectRefused(info(sigs: ["cache-1:AAAA" + injected]), mentioning: "Sig")
    expectRefused(info(url: "nar/x.nar" + injected), mentioning: "URL")
    var compression = info()
    compression.compression = "xz" + injected
    expectRefused(compression, mentioning: "Compression")
}

private let controlCharacters: [Character] = ["\0", "\n", "\r", "\r\n", "\t", "\u{1B}", "\u{7F}", "\u{85}"]

@Test("No control character is accepted in any value", arguments: controlCharacters)
func controlCharactersAreRefused(control: Character) {
    let deriver = "5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello-2.12.1.drv"
    expectRefused(info(deriver: deriver + String(control)), mentioning: "Deriver")
    expectRefused(info(deriver: String(control) + deriver), mentioning: "Deriver")
    expectRefused(info(sigs: ["cache-1:AA\(control)AA"]), mentioning: "Sig")
    expectRefused(info(ca: "text:sha256:\(narHash.digest(.nix32))\(control)"), mentioning: "CA")
    expectRefused(info(url: "nar/\(control)x.nar"), mentioning: "URL")
}

@Test("Parsing refuses a line holding a control character, naming the line")
func parsingRefusesControlCharacters() throws {
    let head = "StorePath: \(storePath.path)\nURL: nar/x.nar\nNarHash: \(narHash.encoded(.nix32))\nNarSize: 1\n"
    #expect(try NarInfo(parsing: head).narSize == 1)
    #expect("CRLF line ends are refused, as Nix refuses them") {
        _ = try NarInfo(parsing: head.replacingOccurrences(of: "\n", with: "\r\n"))
    } throws: { error in
        (error as? NarInfoError)?.line == 1
    }
    for line in [
        "Deriver: 5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-x.drv\rReferences: \(otherPath.baseName)",
        "CA: text:sha256:\(narHash.digest(.nix32))\0",
        "Sig: a-1:\u{1B}[2J",
        "System: x86_64-linux\u{7F}",
    ] {
        #expect {
            _ = try NarInfo(parsing: head + line + "\n")
        } throws: { error in
            (error as? NarInfoError)?.line == 5
                && (error as? NarInfoError)?.description.contains("control character") == true
        }
    }
}

private let sha1 = NixHasher.hash(.sha1, Array("x".utf8))

/// Deriver: a store path base name or `unknown-deriver`.
private let deriverCases: [(String, Bool)] = [
    ("5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello-2.12.1.drv", true),
    ("unknown-deriver", true),
    ("/nix/store/5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello-2.12.1.drv", false),
    ("hello.drv", false),
    ("5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello world.drv", false),
    ("", false),
]

/// CA: a content address Nix would parse.
private let contentAddressCases: [(String, Bool)] = [
    ("text:sha256:\(narHash.digest(.nix32))", true),
    ("fixed:r:sha256:\(narHash.digest(.nix32))", true),
    ("fixed:sha256:\(narHash.digest(.base16))", true),
    ("fixed:sha256:\(narHash.digest(.base64))", true),
    ("fixed:sha1:\(sha1.digest(.base16))", true),
    ("fixed:git:sha1:\(sha1.digest(.nix32))", true),
    ("text:sha1:\(sha1.digest(.nix32))", false),
    ("fixed:r:sha256:sha256:\(narHash.digest(.nix32))", false),
    ("fixed:r:sha256-\(narHash.digest(.base64))", false),
    ("fixed:r:sha256:\(narHash.digest(.nix32).dropLast())", false),
    ("fixed:r:blake3:\(narHash.digest(.nix32))", false),
    ("nope:sha256:\(narHash.digest(.nix32))", false),
    ("fixed:", false),
    ("", false),
]

@Test(
    "Deriver is a store path base name or unknown-deriver; CA is a content address",
    arguments: deriverCases.map { ("Deriver", $0.0, $0.1) } + contentAddressCases.map { ("CA", $0.0, $0.1) })
func fieldShape(field: String, value: String, valid: Bool) {
    let narInfo = field == "CA" ? info(ca: value) : info(deriver: value)
    if valid {
        #expect(throws: Never.self) { try narInfo.validate() }
    } else {
        expectRefused(narInfo, mentioning: field)
    }
}

@Test("Sig is keyname:signature", arguments: ["cache-1:", ":AAAA", "no-colon", "cache-1:AA AA", ""])
func signatureShape(sig: String) {
    expectRefused(info(sigs: [sig]), mentioning: "Sig")
}

@Test("The content addresses nix writes into a binary cache are accepted and rendered back unchanged")
func nixContentAddressesAreAccepted() throws {
    let dir = try TemporaryDirectory()
    let nonce = NixFixtures.nonce()
    let text = try ProcessRunner.nix([
        "nix-instantiate", "--read-write-mode", "--eval", "-E", "builtins.toFile \"ca-text\" \"\(nonce)\"",
    ]).stdoutString.trimmingCharacters(in: .whitespacesAndNewlines.union(CharacterSet(charactersIn: "\"")))
    let fixed = try NixFixtures.addToStore(
        NixFixtures.write("fixed output \(nonce)", named: "ca-fixed", in: dir))
    let cache = dir.sub("cache")
    try ProcessRunner.nix(["nix", "copy", "--to", "file://\(cache)?compression=none", text, fixed])
    var prefixes: [String] = []
    for path in [text, fixed] {
        let hashPart = try StorePath(parsing: path).hashPart
        let written = try String(contentsOfFile: "\(cache)/\(hashPart).narinfo", encoding: .utf8)
        let parsed = try NarInfo(parsing: written)
        let ca = try #require(parsed.ca, "nix wrote a CA for \(path)")
        prefixes.append(String(ca.prefix(while: { $0 != ":" })))
        #expect(try parsed.rendered() == written)
    }
    #expect(prefixes == ["text", "fixed"])
}
