import Testing

@testable import NixCore

private let narHash = NixHasher.hash(.sha256, Array("nar".utf8))
private let fileHash = NixHasher.hash(.sha256, Array("file".utf8))

private let sample = """
    StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-hello-2.12.1
    URL: nar/\(fileHash.digest(.nix32)).nar.xz
    Compression: xz
    FileHash: \(fileHash.encoded(.nix32))
    FileSize: 50264
    NarHash: \(narHash.encoded(.nix32))
    NarSize: 226552
    References: 0c6kzph7l0dcbfmjap64f0czdafn3b7x-hello-2.12.1 9df65igwjmf2wbw0gbrrgair6piqjgmi-glibc-2.38
    Deriver: 5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello-2.12.1.drv
    Sig: cache.nixos.org-1:first
    Sig: cache.nixos.org-1:second
    CA: fixed:r:sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s

    """

@Test("A narinfo round-trips through parse and render unchanged")
func narInfoRoundTrip() throws {
    let info = try NarInfo(parsing: sample)
    #expect(info.storePath.name == "hello-2.12.1")
    #expect(info.compression == "xz")
    #expect(info.fileHash == fileHash)
    #expect(info.fileSize == 50264)
    #expect(info.narHash == narHash)
    #expect(info.narSize == 226552)
    #expect(info.references.map(\.name) == ["hello-2.12.1", "glibc-2.38"])
    #expect(info.deriver == "5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-hello-2.12.1.drv")
    #expect(info.sigs == ["cache.nixos.org-1:first", "cache.nixos.org-1:second"])
    #expect(info.ca?.hasPrefix("fixed:r:sha256:") == true)
    #expect(try info.rendered() == sample)
    #expect(try NarInfo(parsing: info.rendered()) == info)
}

@Test("Defaults and leniency follow Nix: no Compression means bzip2, unknown keys and base16 hashes are accepted")
func narInfoDefaults() throws {
    let text = """
        StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x
        URL: nar/x.nar.bz2
        NarHash: \(narHash.encoded(.base16))
        NarSize: 8
        System: x86_64-linux
        References:
        Deriver: unknown-deriver
        """
    let info = try NarInfo(parsing: text)
    #expect(info.compression == "bzip2")
    #expect(info.narHash == narHash)
    #expect(info.references.isEmpty)
    #expect(info.deriver == nil)
    #expect(info.fileHash == nil)
    let rendered = try info.rendered()
    #expect(rendered.hasSuffix("NarSize: 8\nReferences: \n"))
    #expect(rendered.contains("NarHash: sha256:\(narHash.digest(.nix32))\n"))
}

@Test("References are written as sorted base names and fingerprinted as sorted full paths")
func narInfoReferencesAndFingerprint() throws {
    let a = try StorePath(baseName: "00000000000000000000000000000000-a")
    let z = try StorePath(baseName: "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-z")
    let own = try StorePath(baseName: "0c6kzph7l0dcbfmjap64f0czdafn3b7x-own")
    let info = NarInfo(storePath: own, url: "nar/1.nar", narHash: narHash, narSize: 120, references: [z, own, a])
    #expect(try info.rendered().contains("\nReferences: \(a.baseName) \(own.baseName) \(z.baseName)\n"))
    #expect(
        info.fingerprint
            == "1;\(own.path);sha256:\(narHash.digest(.nix32));120;\(a.path),\(own.path),\(z.path)")
}

private let narInfoErrorCases: [(String, String)] = [
    ("URL: x\nNarHash: \(narHash.encoded(.nix32))\nNarSize: 1\n", "StorePath is missing"),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nNarHash: \(narHash.encoded(.nix32))\nNarSize: 1\n",
        "URL is missing"
    ),
    ("StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nURL: x\nNarSize: 1\n", "NarHash is missing"),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nURL: x\nNarHash: \(narHash.encoded(.nix32))\n",
        "NarSize is missing"
    ),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nURL: x\nNarHash: \(narHash.encoded(.nix32))\nNarSize: 0\n",
        "line 4: NarSize: a NAR is never empty"
    ),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nURL: x\nNarHash: \(narHash.encoded(.nix32))\nNarSize: -3\n",
        "line 4: NarSize: '-3' is not a size"
    ),
    ("StorePath: /nix/store/bad\n", "line 1: StorePath: invalid store path '/nix/store/bad'"),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nNarHash: sha256:xyz\n",
        "line 2: NarHash: invalid hash 'sha256:xyz'"
    ),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nReferences: ok nope\n",
        "line 2: References: invalid store path 'ok'"
    ),
    ("StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nno colon here\n", "line 2: expected 'Key: value'"),
    (
        "StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nDeriver: /nix/store/x.drv\n",
        "line 2: Deriver: invalid store path"
    ),
    ("StorePath: /nix/store/0c6kzph7l0dcbfmjap64f0czdafn3b7x-x\nFileSize: big\n", "line 2: FileSize: 'big'"),
]

@Test(
    "Broken narinfo is refused with the line and field at fault", arguments: narInfoErrorCases)
func narInfoErrors(text: String, expected: String) {
    do {
        _ = try NarInfo(parsing: text)
        Issue.record("parsed although broken: \(text)")
    } catch let error as NarInfoError {
        #expect(error.description.contains(expected), "\(error.description)")
    } catch {
        Issue.record("unexpected error \(error)")
    }
}
