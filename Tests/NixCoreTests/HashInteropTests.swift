import Foundation
import TestSupport
import Testing

@testable import NixCore

/// Contents that exercise the encoders: empty, short text, bytes spanning every value, a multi-block input.
private let sampleContents: [(String, [UInt8])] = [
    ("empty", []),
    ("hello", Array("hello world\n".utf8)),
    ("allbytes", (0..<256).map { UInt8($0) }),
    ("large", (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }),
]

private let nixFlags: [(NixHash.Encoding, String)] = [
    (.base16, "--base16"), (.nix32, "--base32"), (.base64, "--base64"), (.sri, "--sri"),
]

@Test(
    "NixHasher matches nix hash file in every encoding",
    arguments: sampleContents.map(\.0), [HashAlgorithm.md5, .sha1, .sha256, .sha512])
func hashFileMatchesNix(sample: String, algorithm: HashAlgorithm) throws {
    let dir = try TemporaryDirectory()
    let bytes = try #require(sampleContents.first { $0.0 == sample }).1
    let file = dir.sub(sample)
    try Data(bytes).write(to: URL(fileURLWithPath: file))
    let ours = NixHasher.hash(algorithm, bytes)
    for (encoding, flag) in nixFlags {
        let nix = try ProcessRunner.nix(["nix", "hash", "file", "--type", algorithm.rawValue, flag, file])
            .stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
        let expected = encoding == .sri ? ours.encoded(.sri) : ours.digest(encoding)
        #expect(nix == expected, "\(algorithm) \(flag) of \(sample)")
        #expect(try NixHash(parsing: nix, algorithm: algorithm) == ours)
    }
}

@Test("NixHasher gives the same digest fed in uneven chunks")
func streamingMatchesOneShot() {
    let bytes = sampleContents[3].1
    var hasher = NixHasher(.sha256)
    var index = 0
    var step = 1
    while index < bytes.count {
        let end = min(bytes.count, index + step)
        hasher.update(bytes[index..<end])
        index = end
        step = step * 3 + 1
    }
    #expect(hasher.finalize() == NixHasher.hash(.sha256, bytes))
}

@Test("nix hash to-base32/to-base16/to-sri agree with Capstan's encodings", arguments: HashAlgorithm.allCases)
func hashConversionsMatchNix(algorithm: HashAlgorithm) throws {
    let hash = NixHasher.hash(algorithm, Array("conversion \(algorithm)".utf8))
    let conversions: [(String, String)] = [
        ("to-base32", hash.digest(.nix32)), ("to-base16", hash.digest(.base16)), ("to-sri", hash.encoded(.sri)),
    ]
    for input in [hash.encoded(.base16), hash.encoded(.nix32), hash.encoded(.sri), hash.encoded(.base64)] {
        for (command, expected) in conversions {
            let nix = try ProcessRunner.nix(["nix", "hash", command, "--type", algorithm.rawValue, input])
                .stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(nix == expected, "nix hash \(command) \(input)")
            #expect(try NixHash(parsing: nix, algorithm: algorithm) == hash)
        }
    }
}
