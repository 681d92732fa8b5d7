/// Why a narinfo could not be read, with the line or field at fault.
public struct NarInfoError: Error, CustomStringConvertible, Equatable, Sendable {
    /// 1-based line number, when the problem belongs to one line.
    public var line: Int?
    public var reason: String
    public var description: String {
        if let line { "narinfo line \(line): \(reason)" } else { "narinfo: \(reason)" }
    }
}

/// The `.narinfo` a binary cache serves for one store path: where its NAR is and what it contains.
public struct NarInfo: Sendable, Equatable {
    public var storePath: StorePath
    /// Location of the (possibly compressed) NAR, relative to the cache root.
    public var url: String
    /// `none`, `xz`, `zstd`, `bzip2`…; a narinfo without the field means `bzip2`, as in Nix.
    public var compression: String
    /// Hash and size of the file at `url` (the compressed NAR).
    public var fileHash: NixHash?
    public var fileSize: UInt64?
    /// Hash and size of the uncompressed NAR; what signatures cover.
    public var narHash: NixHash
    public var narSize: UInt64
    public var references: [StorePath]
    /// Base name of the derivation that built the path.
    public var deriver: String?
    /// `keyname:base64` signatures over `fingerprint`.
    public var sigs: [String]
    /// Content address, e.g. `fixed:r:sha256:…`, for content-addressed paths.
    public var ca: String?

    public init(
        storePath: StorePath, url: String, compression: String = "none", fileHash: NixHash? = nil,
        fileSize: UInt64? = nil, narHash: NixHash, narSize: UInt64, references: [StorePath] = [],
        deriver: String? = nil, sigs: [String] = [], ca: String? = nil
    ) {
        self.storePath = storePath
        self.url = url
        self.compression = compression
        self.fileHash = fileHash
        self.fileSize = fileSize
        self.narHash = narHash
        self.narSize = narSize
        self.references = references
        self.deriver = deriver
        self.sigs = sigs
        self.ca = ca
    }

    /// Reads `Key: value` lines; unknown keys are skipped so newer caches stay readable.
    public init(parsing text: String, storeDir: String = StorePath.defaultStoreDir) throws {
        var storePath: StorePath?
        var url: String?
        var compression: String?
        var fileHash: NixHash?
        var fileSize: UInt64?
        var narHash: NixHash?
        var narSize: UInt64?
        var references: [StorePath] = []
        var deriver: String?
        var sigs: [String] = []
        var ca: String?

        // Split on the newline byte as Nix does: "\r\n" is one Character, and a CR is refused below.
        for (index, bytes) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .enumerated()
        {
            let lineNumber = index + 1
            let line = Substring(bytes)
            if line.isEmpty { continue }
            if let control = Self.firstControlCharacter(in: line) {
                throw NarInfoError(
                    line: lineNumber, reason: "the line contains the control character \(Self.codePoint(control))")
            }
            guard let colon = line.firstIndex(of: ":") else {
                throw NarInfoError(line: lineNumber, reason: "expected 'Key: value', got '\(line)'")
            }
            let key = String(line[..<colon])
            var value = line[line.index(after: colon)...]
            if value.first == " " { value = value.dropFirst() }
            let field = String(value)
            func fail(_ reason: String) -> NarInfoError {
                NarInfoError(line: lineNumber, reason: "\(key): \(reason)")
            }
            /// Runs a nested parser, re-raising its error tagged with this line and key.
            func parse<T>(_ body: () throws -> T) throws -> T {
                do {
                    return try body()
                } catch var error as NarInfoError {
                    error.line = lineNumber
                    throw error
                } catch {
                    throw fail("\(error)")
                }
            }
            switch key {
            case "StorePath":
                storePath = try parse { try StorePath(parsing: field, storeDir: storeDir) }
            case "URL":
                guard !field.isEmpty else { throw fail("the URL is empty") }
                url = field
            case "Compression":
                compression = field
            case "FileHash":
                fileHash = try parse { try NixHash(parsing: field) }
            case "FileSize":
                guard let size = UInt64(field) else { throw fail("'\(field)' is not a size in bytes") }
                fileSize = size
            case "NarHash":
                narHash = try parse { try NixHash(parsing: field) }
            case "NarSize":
                guard let size = UInt64(field) else { throw fail("'\(field)' is not a size in bytes") }
                guard size > 0 else { throw fail("a NAR is never empty, NarSize must be above 0") }
                narSize = size
            case "References":
                for token in field.split(separator: " ") {
                    references.append(try parse { try StorePath(baseName: String(token), storeDir: storeDir) })
                }
            case "Deriver":
                // Some writers put a placeholder here rather than leaving the field out.
                if field != Self.unknownDeriver && !field.isEmpty {
                    deriver = try parse { try StorePath(baseName: field, storeDir: storeDir).baseName }
                }
            case "Sig":
                try parse { try Self.checkSignature(field) }
                sigs.append(field)
            case "CA":
                try parse { try Self.checkContentAddress(field) }
                ca = field
            default:
                continue
            }
        }

        guard let storePath else { throw NarInfoError(line: nil, reason: "the required field StorePath is missing") }
        guard let url else { throw NarInfoError(line: nil, reason: "the required field URL is missing") }
        guard let narHash else { throw NarInfoError(line: nil, reason: "the required field NarHash is missing") }
        guard let narSize else { throw NarInfoError(line: nil, reason: "the required field NarSize is missing") }
        self.init(
            storePath: storePath, url: url, compression: compression.flatMap { $0.isEmpty ? nil : $0 } ?? "bzip2",
            fileHash: fileHash, fileSize: fileSize, narHash: narHash, narSize: narSize, references: references,
            deriver: deriver, sigs: sigs, ca: ca)
        try validate()
    }

    /// The narinfo text, fields in the order Nix writes them, ending with a newline; refuses
    /// (rather than writes) a value that `validate()` refuses, so no value can add a line.
    public func rendered() throws -> String {
        try validate()
        var out = "StorePath: \(storePath.path)\n"
        out += "URL: \(url)\n"
        out += "Compression: \(compression)\n"
        if let fileHash { out += "FileHash: \(fileHash.encoded(.nix32))\n" }
        if let fileSize { out += "FileSize: \(fileSize)\n" }
        out += "NarHash: \(narHash.encoded(.nix32))\n"
        out += "NarSize: \(narSize)\n"
        out += "References: \(sortedReferences.map(\.baseName).joined(separator: " "))\n"
        if let deriver { out += "Deriver: \(deriver)\n" }
        for sig in sigs { out += "Sig: \(sig)\n" }
        if let ca { out += "CA: \(ca)\n" }
        return out
    }

    /// What a cache key signs: `1;<path>;<narHash>;<narSize>;<sorted full reference paths>`.
    public var fingerprint: String {
        let refs = sortedReferences.map(\.path).joined(separator: ",")
        return "1;\(storePath.path);\(narHash.encoded(.nix32));\(narSize);\(refs)"
    }

    /// References deduplicated and sorted, as Nix keeps them in a set.
    private var sortedReferences: [StorePath] { Set(references).sorted() }
}
