import NixCore

/// Parses the input as a narinfo; and, apart from that, puts its 0xFF-separated parts into
/// Deriver, CA, Sig and URL. Whatever is accepted renders to exactly one known line per field
/// and reads back to the same text: no value can add a line.
enum NarInfoHarness {
    static let renderedKeys: Set<Substring> = [
        "StorePath", "URL", "Compression", "FileHash", "FileSize", "NarHash", "NarSize", "References", "Deriver",
        "Sig", "CA",
    ]

    static func run(_ bytes: UnsafeRawBufferPointer) throws -> FuzzVerdict {
        let parts = bytes.split(separator: 0xFF, maxSplits: 3, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        if parts.count == 4 {
            let built = NarInfo(
                storePath: try! StorePath(baseName: "0c6kzph7l0dcbfmjap64f0czdafn3b7x-fuzz"), url: parts[3],
                narHash: NixHasher.hash(.sha256, [0]), narSize: 8, deriver: parts[0], sigs: [parts[2]], ca: parts[1])
            do {
                try built.validate()
            } catch {
                return .refused("\(error)")
            }
            try checkRendering(built)
            return .accepted
        }
        let parsed: NarInfo
        do {
            parsed = try NarInfo(parsing: String(decoding: bytes, as: UTF8.self))
        } catch {
            return .refused("\(error)")
        }
        try checkRendering(parsed)
        return .accepted
    }

    static func checkRendering(_ info: NarInfo) throws {
        let text: String
        do {
            text = try info.rendered()
        } catch {
            throw FuzzFinding("a narinfo that validates does not render: \(error)")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        let optional = [info.fileHash != nil, info.fileSize != nil, info.deriver != nil, info.ca != nil]
        let expected = 6 + info.sigs.count + optional.count { $0 }
        guard lines.count == expected else {
            throw FuzzFinding("rendered \(lines.count) lines, expected \(expected): \(text)")
        }
        for line in lines where !renderedKeys.contains(line.prefix { $0 != ":" }) {
            throw FuzzFinding("rendered an unknown line '\(line)'")
        }
        let reread: NarInfo
        do {
            reread = try NarInfo(parsing: text)
        } catch {
            throw FuzzFinding("the rendered narinfo does not parse: \(error)\n\(text)")
        }
        guard try reread.rendered() == text, reread.deriver == info.deriver, reread.ca == info.ca,
            reread.sigs == info.sigs
        else {
            throw FuzzFinding("the rendered narinfo reads back differently:\n\(text)")
        }
    }
}
