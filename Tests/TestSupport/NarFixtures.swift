import Foundation

/// A tree with every kind of entry NAR can hold and the names and sizes where serialisers go wrong.
public enum NarCorpus {
    /// Paths (relative to the corpus root) worth serialising on their own, the root ("") first.
    public static let items = [
        "", "empty", "one", "seven", "eight", "nine", "big", "script", "emptydir", "links/relative",
        "links/absolute", "links/dangling", "names", "deep", "unicode",
    ]

    /// Names whose bytewise order differs from most locales' collation.
    public static let awkwardNames = ["B", "a", "_", "Z", "é", "a.b", "a-b", "a0", "ä", "Ω", "~", "A b"]

    public static let deepLevels = 100

    /// Creates the corpus as `root` (which must not exist yet).
    public static func create(at root: String) throws {
        let fm = FileManager.default
        func dir(_ path: String) throws {
            try fm.createDirectory(atPath: "\(root)/\(path)", withIntermediateDirectories: true)
        }
        func file(_ path: String, _ data: Data, executable: Bool = false) throws {
            guard fm.createFile(atPath: "\(root)/\(path)", contents: data) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: "\(root)/\(path)"])
            }
            if executable { try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: "\(root)/\(path)") }
        }
        func link(_ path: String, _ target: String) throws {
            try fm.createSymbolicLink(atPath: "\(root)/\(path)", withDestinationPath: target)
        }
        try dir("")
        try file("empty", Data())
        try file("one", Data("x".utf8))
        try file("seven", Data("1234567".utf8))
        try file("eight", Data("12345678".utf8))
        try file("nine", Data("123456789".utf8))
        try file("big", deterministicBytes(count: 5 << 20 + 3, seed: 42))
        try file("script", Data("#!/bin/sh\necho hello\n".utf8), executable: true)
        try dir("emptydir")
        try dir("links")
        try link("links/relative", "../one")
        try link("links/absolute", "/etc/hostname")
        try link("links/dangling", "does/not/exist")
        try dir("names")
        for (index, name) in awkwardNames.enumerated() {
            try file("names/\(name)", Data(repeating: UInt8(index), count: index))
        }
        try dir("names/sub dir")
        try file("names/sub dir/x", Data("x".utf8), executable: true)
        let deep = (0..<deepLevels).map { "d\($0 % 10)" }.joined(separator: "/")
        try dir("deep/" + deep)
        try file("deep/" + deep + "/leaf", Data("leaf".utf8))
        try dir("unicode/日本語")
        try file("unicode/日本語/ファイル", Data("utf8".utf8))
        try link("unicode/→", "日本語")
    }

    /// Reproducible pseudo-random bytes (xorshift64*), so failures can be replayed.
    public static func deterministicBytes(count: Int, seed: UInt64) -> Data {
        var state = seed | 1
        var data = Data(count: count)
        data.withUnsafeMutableBytes { raw in
            var offset = 0
            while offset < count {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                var word = (state &* 2_685_821_657_736_338_717).littleEndian
                let n = min(8, count - offset)
                withUnsafeBytes(of: &word) {
                    raw.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: n)
                }
                offset += n
            }
        }
        return data
    }
}

/// Builds NAR byte streams token by token, so tests can write archives Nix would never produce.
/// Each method returns an extended copy: `NarTokens().tokens("nix-archive-1").file("x")`.
public struct NarTokens: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// A framed string token: u64-LE length, bytes, `padding` (zeros by default).
    public func token(_ value: [UInt8], padding: [UInt8]? = nil) -> Self {
        length(UInt64(value.count)).raw(value + (padding ?? [UInt8](repeating: 0, count: (8 - value.count % 8) % 8)))
    }

    public func tokens(_ values: String...) -> Self {
        values.reduce(self) { $0.token(Array($1.utf8)) }
    }

    /// A bare length field, e.g. a hostile length with nothing behind it.
    public func length(_ value: UInt64) -> Self {
        raw(withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }

    public func raw(_ value: [UInt8]) -> Self {
        var copy = self
        copy.bytes += value
        return copy
    }

    public func file(_ contents: String, executable: Bool = false) -> Self {
        let start = tokens("(", "type", "regular")
        return (executable ? start.tokens("executable", "") : start).tokens("contents", contents, ")")
    }

    public func symlink(_ target: String) -> Self {
        tokens("(", "type", "symlink", "target", target, ")")
    }

    public func directory() -> Self { tokens("(", "type", "directory") }

    /// `entry ( name <name> node` — then the node, then `endEntry()`.
    public func entry(_ name: [UInt8]) -> Self {
        tokens("entry", "(", "name").token(name).tokens("node")
    }

    public func entry(_ name: String) -> Self { entry(Array(name.utf8)) }

    public func endEntry() -> Self { tokens(")") }

    /// `)` closing a directory.
    public func endDirectory() -> Self { tokens(")") }

    public var data: Data { Data(bytes) }
}
