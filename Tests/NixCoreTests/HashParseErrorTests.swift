import Testing

@testable import NixCore

private let sha256Hex = String(repeating: "ab", count: 32)

private let hashParseCases: [(String, String)] = [
    ("sha256:" + String(sha256Hex.dropLast(2)), "wrong length 62"),
    ("sha256:abc", "wrong length 3"),
    ("sha256:", "wrong length 0"),
    ("sha1:" + sha256Hex, "wrong length 64 for sha1"),
    ("sha256:" + String(sha256Hex.dropLast()) + "g", "characters outside"),
    ("sha256:" + String(repeating: "e", count: 52), "characters outside"),
    ("sha256-" + String(repeating: "*", count: 44), "not valid base64"),
    ("sha256-AAAA", "not valid base64 of 32 bytes"),
    ("blake3:" + sha256Hex, "unknown hash algorithm 'blake3'"),
    ("whirlpool:abc", "unknown hash algorithm 'whirlpool'"),
    (sha256Hex, "no hash algorithm"),
]

@Test(
    "NixHash parsing rejects bad input with a message naming the problem", arguments: hashParseCases)
func hashParseErrors(input: String, expected: String) {
    do {
        _ = try NixHash(parsing: input)
        Issue.record("'\(input)' parsed although it is invalid")
    } catch let error as HashParseError {
        #expect(error.description.contains(expected), "\(error.description)")
        #expect(error.description.contains(input))
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Test("A hash of another algorithm than the one required is refused")
func hashAlgorithmMismatch() throws {
    let sha1 = NixHasher.hash(.sha1, [1, 2, 3])
    #expect(throws: HashParseError.self) { try NixHash(parsing: sha1.encoded(.nix32), algorithm: .sha256) }
    #expect(try NixHash(parsing: sha1.digest(.base16), algorithm: .sha1) == sha1)
}

@Test("nix32 rejects a final character carrying bits beyond the digest")
func nix32Overflow() {
    // 52 characters hold 260 bits; a leading 'z' sets bits above 256.
    #expect(Nix32.decode("z" + String(repeating: "0", count: 51), byteCount: 32) == nil)
    #expect(Nix32.decode("1" + String(repeating: "0", count: 51), byteCount: 32) != nil)
}
