/// The fixed vocabulary of the NAR format and the framing every token shares.
enum NarFormat {
    static let magic = Array("nix-archive-1".utf8)
    static let open = Array("(".utf8)
    static let close = Array(")".utf8)
    static let type = Array("type".utf8)
    static let regular = Array("regular".utf8)
    static let symlink = Array("symlink".utf8)
    static let directory = Array("directory".utf8)
    static let executable = Array("executable".utf8)
    static let contents = Array("contents".utf8)
    static let target = Array("target".utf8)
    static let entry = Array("entry".utf8)
    static let name = Array("name".utf8)
    static let node = Array("node".utf8)

    /// Longest keyword token; anything longer where a keyword is expected is rejected before buffering.
    static let longestKeyword = 16

    /// Zero bytes that follow a token of `length` bytes to reach a multiple of 8.
    @inline(__always)
    static func padding(for length: UInt64) -> Int { Int((8 &- (length & 7)) & 7) }

    /// Tokens framed as the writer emits them: u64-LE length, bytes, zero padding.
    static func encoded(_ tokens: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for token in tokens {
            withUnsafeBytes(of: UInt64(token.count).littleEndian) { out.append(contentsOf: $0) }
            out.append(contentsOf: token)
            out.append(contentsOf: repeatElement(0, count: padding(for: UInt64(token.count))))
        }
        return out
    }

    // Constant runs of tokens, pre-framed so the writer copies each with one memcpy.
    static let archiveStart = encoded([magic])
    static let regularStart = encoded([open, type, regular, contents])
    static let executableStart = encoded([open, type, regular, executable, [], contents])
    static let symlinkStart = encoded([open, type, symlink, target])
    static let directoryStart = encoded([open, type, directory])
    static let entryStart = encoded([entry, open, name])
    static let nodeKeyword = encoded([node])
    static let closeToken = encoded([close])
}
