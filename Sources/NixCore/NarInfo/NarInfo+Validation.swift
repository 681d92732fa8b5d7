extension NarInfo {
    /// What Nix writes when it does not know the deriver; read as "no deriver".
    public static let unknownDeriver = "unknown-deriver"

    /// Checks every field as Nix's narinfo parser would read it back, so that no value can carry
    /// a second line (`Deriver: x\nReferences: …`) or anything Nix would refuse: no control
    /// characters anywhere, `Deriver` a store path base name, `CA` a content address, `Sig` a
    /// `keyname:signature`, `URL` and `Compression` present.
    public func validate() throws {
        try Self.checkValue(storePath.path, field: "StorePath")
        for reference in references { try Self.checkValue(reference.path, field: "References") }
        try Self.checkValue(url, field: "URL")
        if url.isEmpty { throw NarInfoError(line: nil, reason: "URL: the URL is empty") }
        try Self.checkValue(compression, field: "Compression")
        if compression.isEmpty || compression.unicodeScalars.contains(where: { $0 == " " }) {
            throw NarInfoError(line: nil, reason: "Compression: '\(compression)' is not a compression method name")
        }
        if let deriver { try Self.checkDeriver(deriver) }
        for sig in sigs { try Self.checkSignature(sig) }
        if let ca { try Self.checkContentAddress(ca) }
    }

    /// Like the memberwise initialiser, but refuses a value that `validate()` refuses.
    public init(
        validating storePath: StorePath, url: String, compression: String = "none", fileHash: NixHash? = nil,
        fileSize: UInt64? = nil, narHash: NixHash, narSize: UInt64, references: [StorePath] = [],
        deriver: String? = nil, sigs: [String] = [], ca: String? = nil
    ) throws {
        self.init(
            storePath: storePath, url: url, compression: compression, fileHash: fileHash, fileSize: fileSize,
            narHash: narHash, narSize: narSize, references: references, deriver: deriver, sigs: sigs, ca: ca)
        try validate()
    }

    /// Refuses any control character (Unicode category Cc: NUL, newline, CR, ESC, DEL, C1…).
    static func checkValue(_ value: String, field: String) throws {
        if let control = firstControlCharacter(in: value) {
            throw NarInfoError(
                line: nil,
                reason: "\(field): the value contains the control character \(codePoint(control)); "
                    + "a narinfo value is one line of printable text")
        }
    }

    static func firstControlCharacter<Text: StringProtocol>(in text: Text) -> Unicode.Scalar? {
        text.unicodeScalars.first { $0.properties.generalCategory == .control }
    }

    /// A store path base name (`<hash>-<name>.drv`), or `unknown-deriver`.
    static func checkDeriver(_ deriver: String) throws {
        try checkValue(deriver, field: "Deriver")
        if deriver == unknownDeriver { return }
        do {
            _ = try StorePath(baseName: deriver)
        } catch {
            throw NarInfoError(
                line: nil, reason: "Deriver: \(error); expected '<hash>-<name>.drv' or '\(unknownDeriver)'")
        }
    }

    /// `keyname:signature`, both parts non-empty and without blanks.
    static func checkSignature(_ sig: String) throws {
        try checkValue(sig, field: "Sig")
        guard let colon = sig.firstIndex(of: ":"), colon != sig.startIndex, sig.index(after: colon) != sig.endIndex,
            !sig.unicodeScalars.contains(where: { $0 == " " })
        else {
            throw NarInfoError(line: nil, reason: "Sig: '\(sig)' is not a signature in the form 'keyname:base64'")
        }
    }

    /// A content address as Nix parses one: `text:sha256:<hash>` or `fixed:[r:|git:]<algorithm>:<hash>`.
    static func checkContentAddress(_ ca: String) throws {
        try checkValue(ca, field: "CA")
        func refuse(_ why: String) -> NarInfoError {
            NarInfoError(
                line: nil,
                reason: "CA: '\(ca)' is not a content address (\(why)); expected 'text:sha256:<hash>' "
                    + "or 'fixed:[r:]<algorithm>:<hash>'")
        }
        var rest = Substring(ca)
        let method: Substring
        if rest.hasPrefix("text:") {
            method = "text"
            rest = rest.dropFirst(5)
        } else if rest.hasPrefix("fixed:") {
            method = "fixed"
            rest = rest.dropFirst(6)
            if rest.hasPrefix("r:") {
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix("git:") {
                rest = rest.dropFirst(4)
            }
        } else {
            throw refuse("the prefix must be 'text:' or 'fixed:'")
        }
        guard let colon = rest.firstIndex(of: ":"), let algorithm = HashAlgorithm(rawValue: String(rest[..<colon]))
        else { throw refuse("no hash algorithm") }
        if method == "text" && algorithm != .sha256 {
            throw refuse("a text content address uses sha256, not \(algorithm)")
        }
        let digest = rest[rest.index(after: colon)...]
        // Nix reads an unprefixed, non-SRI digest here: base16, nix32 or base64 of the algorithm's size.
        guard !digest.contains("-"), !digest.contains(":"),
            (try? NixHash(parsing: String(digest), algorithm: algorithm)) != nil
        else {
            throw refuse("the digest is not a \(algorithm) hash in base16, nix32 or base64")
        }
    }

    /// `U+000A`, the way a person looks a character up.
    static func codePoint(_ scalar: Unicode.Scalar) -> String {
        let digits = String(scalar.value, radix: 16, uppercase: true)
        return "U+" + String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
