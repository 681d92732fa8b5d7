/// How a file system object was turned into the bytes that were hashed.
public enum FileIngestionMethod: String, Sendable, CaseIterable {
    /// The file's own bytes (a regular file only).
    case flat
    /// The NAR serialisation of the file, directory or symlink.
    case recursive
}

extension StorePath {
    /// Nix's makeStorePath: SHA-256 of `<type>:<algo>:<hex inner>:<storeDir>:<name>`, folded to 160 bits.
    public static func make(
        type: String, innerHash: NixHash, name: String, storeDir: String = StorePath.defaultStoreDir
    ) throws -> StorePath {
        let storeDir = normalised(storeDir)
        let fingerprint = "\(type):\(innerHash.encoded(.base16)):\(storeDir):\(name)"
        let digest = NixHasher.hash(.sha256, Array(fingerprint.utf8)).bytes
        var folded = [UInt8](repeating: 0, count: 20)
        for (index, byte) in digest.enumerated() { folded[index % 20] ^= byte }
        return try StorePath(hashPart: Nix32.encode(folded), name: name, storeDir: storeDir)
    }

    /// The path of a `builtins.toFile` / `addTextToStore` text with the given SHA-256 and references.
    public static func text(
        name: String, textHash: NixHash, references: [StorePath] = [], storeDir: String = StorePath.defaultStoreDir
    ) throws -> StorePath {
        try make(type: typeString("text", references: references), innerHash: textHash, name: name, storeDir: storeDir)
    }

    /// The path of a text whose contents are at hand.
    public static func text(
        name: String, contents: String, references: [StorePath] = [], storeDir: String = StorePath.defaultStoreDir
    ) throws -> StorePath {
        try text(
            name: name, textHash: NixHasher.hash(.sha256, Array(contents.utf8)), references: references,
            storeDir: storeDir)
    }

    /// The path `nix-store --add` and source imports give: type `source`, inner hash = SHA-256 of the NAR.
    public static func source(
        name: String, narHash: NixHash, references: [StorePath] = [], selfReference: Bool = false,
        storeDir: String = StorePath.defaultStoreDir
    ) throws -> StorePath {
        try make(
            type: typeString("source", references: references, selfReference: selfReference), innerHash: narHash,
            name: name, storeDir: storeDir)
    }

    /// The path of a fixed-output result (`nix-store --add-fixed`, fetchurl): recursive SHA-256 is a
    /// source path; anything else hashes `fixed:out:[r:]<algo>:<hex>:` and uses type `output:out`.
    public static func fixedOutput(
        name: String, method: FileIngestionMethod, hash: NixHash, storeDir: String = StorePath.defaultStoreDir
    ) throws -> StorePath {
        if method == .recursive && hash.algorithm == .sha256 {
            return try source(name: name, narHash: hash, storeDir: storeDir)
        }
        let prefix = method == .recursive ? "r:" : ""
        let inner = NixHasher.hash(.sha256, Array("fixed:out:\(prefix)\(hash.encoded(.base16)):".utf8))
        return try make(type: "output:out", innerHash: inner, name: name, storeDir: storeDir)
    }

    /// `<kind>:<ref>:<ref>…[:self]` with references as full paths in sorted order, as Nix builds it.
    private static func typeString(_ kind: String, references: [StorePath], selfReference: Bool = false) -> String {
        var type = kind
        for reference in Set(references).sorted() { type += ":\(reference.path)" }
        if selfReference { type += ":self" }
        return type
    }
}
