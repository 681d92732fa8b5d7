import Foundation
import NixCore
import TestSupport
import Testing

/// An archive that must be rejected, the words its error must contain and where.
struct MaliciousNar: CustomTestStringConvertible, Sendable {
    var name: String
    var nar: NarTokens
    var message: String
    var limits = NarLimits.default
    var testDescription: String { name }
}

let header = NarTokens().tokens("nix-archive-1")
let rootDirectory = header.directory()

/// A root directory whose single entry `name` is a file.
func directoryWithEntry(_ name: [UInt8]) -> NarTokens {
    rootDirectory.entry(name).file("x").endEntry().endDirectory()
}

func nested(_ levels: Int) -> NarTokens {
    var nar = rootDirectory
    for _ in 0..<levels { nar = nar.entry("d").directory() }
    for _ in 0..<levels { nar = nar.endDirectory().endEntry() }
    return nar.endDirectory()
}

let maliciousArchives: [MaliciousNar] = [
    MaliciousNar(
        name: "bad magic", nar: NarTokens().tokens("nix-archive-2").file("x"),
        message: "does not start with 'nix-archive-1'"),
    MaliciousNar(
        name: "huge first token", nar: NarTokens().length(1 << 62), message: "does not start with 'nix-archive-1'"),
    MaliciousNar(
        name: "empty input", nar: NarTokens(), message: "truncated NAR: input ended where 'nix-archive-1' was expected"),
    MaliciousNar(
        name: "unknown node type", nar: header.tokens("(", "type", "fifo", ")"),
        message: "unexpected token 'fifo' where 'regular', 'symlink' or 'directory' was expected"),
    MaliciousNar(
        name: "unknown directory item", nar: rootDirectory.tokens("entries"),
        message: "unexpected token 'entries' where 'entry' or ')' was expected"),
    MaliciousNar(
        name: "contents before executable", nar: header.tokens("(", "type", "regular", "contents", "x", "executable"),
        message: "unexpected token 'executable' where ')' was expected"),
    MaliciousNar(
        name: "executable with a value", nar: header.tokens("(", "type", "regular", "executable", "yes"),
        message: "unexpected token 'yes' where the empty string after 'executable' was expected"),
    MaliciousNar(
        name: "oversize keyword", nar: header.length(1 << 40),
        message: "unexpected token of 1099511627776 bytes where '(' was expected"),
    MaliciousNar(
        name: "unsorted entries",
        nar: rootDirectory.entry("b").file("1").endEntry().entry("a").file("2").endEntry().endDirectory(),
        message: "directory entries are not sorted: 'a' comes after 'b'"),
    MaliciousNar(
        name: "bytewise order, not locale order",
        nar: rootDirectory.entry("a").file("1").endEntry().entry("B").file("2").endEntry().endDirectory(),
        message: "directory entries are not sorted: 'B' comes after 'a'"),
    MaliciousNar(
        name: "duplicate entries",
        nar: rootDirectory.entry("a").file("1").endEntry().entry("a").file("2").endEntry().endDirectory(),
        message: "duplicate directory entry 'a'"),
    MaliciousNar(name: "empty name", nar: directoryWithEntry([]), message: "invalid entry name '': it is empty"),
    MaliciousNar(
        name: "name with slash", nar: directoryWithEntry(Array("a/b".utf8)),
        message: "invalid entry name 'a/b': it contains '/'"),
    MaliciousNar(name: "name with NUL", nar: directoryWithEntry([97, 0, 98]), message: "it contains a NUL byte"),
    MaliciousNar(
        name: "dot", nar: directoryWithEntry([46]), message: "invalid entry name '.': '.' and '..' cannot be entries"),
    MaliciousNar(name: "dot dot", nar: directoryWithEntry([46, 46]), message: "invalid entry name '..'"),
    MaliciousNar(
        name: "oversize name", nar: rootDirectory.tokens("entry", "(", "name").length(5000),
        message: "entry name of 5000 bytes is longer than the limit of 4096 bytes"),
    MaliciousNar(
        name: "oversize symlink target", nar: header.tokens("(", "type", "symlink", "target").length(1 << 50),
        message: "symlink target of 1125899906842624 bytes is longer than the limit of 4096 bytes"),
    MaliciousNar(name: "empty symlink target", nar: header.symlink(""), message: "invalid symlink target: it is empty"),
    MaliciousNar(
        name: "non-zero padding after a keyword",
        nar: header.token(Array("(".utf8), padding: [0, 0, 0, 0, 0, 0, 1]), message: "non-zero padding"),
    MaliciousNar(
        name: "non-zero padding after contents",
        nar: header.tokens("(", "type", "regular", "contents").token(Array("abc".utf8), padding: [0, 7, 0, 0, 0]),
        message: "non-zero padding"),
    MaliciousNar(
        name: "trailing data", nar: header.file("x").raw([0]), message: "trailing data after the end of the archive"),
    MaliciousNar(
        name: "second root object", nar: header.file("x").file("y"),
        message: "trailing data after the end of the archive"),
    MaliciousNar(
        name: "deeper than a custom limit", nar: nested(6), message: "entries nested deeper than the limit of 5 levels",
        limits: NarLimits(maxDepth: 5)),
    MaliciousNar(
        name: "deeper than the default limit", nar: nested(257), message: "nested deeper than the limit of 256 levels"),
    MaliciousNar(
        name: "contents longer than the input", nar: header.tokens("(", "type", "regular", "contents").length(1 << 60),
        message: "truncated NAR: input ended where 1152921504606846976 more bytes of file contents was expected"),
    // Found by fuzzing: NarValidator added the declared length to its total, which overflowed and trapped.
    MaliciousNar(
        name: "contents longer than any NAR after another file",
        nar: rootDirectory.entry("a").file("a").endEntry().entry("b").tokens("(", "type", "regular", "contents")
            .length(UInt64.max),
        message: "file contents of 18446744073709551615 bytes cannot fit in a NAR"),
    // Write-through attempts: a symlink followed by an entry that would reach through it.
    MaliciousNar(
        name: "symlink then a directory of the same name",
        nar: rootDirectory.entry("a").symlink("/tmp").endEntry()
            .entry("a").directory().entry("x").file("pwned").endEntry().endDirectory().endEntry().endDirectory(),
        message: "duplicate directory entry 'a'"),
    MaliciousNar(
        name: "symlink to parent then a file of the same name",
        nar: rootDirectory.entry("a").symlink("..").endEntry().entry("a").file("pwned").endEntry().endDirectory(),
        message: "duplicate directory entry 'a'"),
    MaliciousNar(
        name: "symlink then a path through it",
        nar: rootDirectory.entry("a").symlink("..").endEntry().entry("a/escape").file("pwned").endEntry()
            .endDirectory(),
        message: "invalid entry name 'a/escape': it contains '/'"),
    MaliciousNar(
        name: "symlink then an entry sorting before it",
        nar: rootDirectory.entry("b").symlink("..").endEntry().entry("a").file("pwned").endEntry().endDirectory(),
        message: "directory entries are not sorted: 'a' comes after 'b'"),
]

@Suite struct NarParserTests {
    @Test(arguments: maliciousArchives)
    func rejectsWithADescriptiveError(_ archive: MaliciousNar) throws {
        let error = #expect(throws: NarParseError.self) {
            try parse(archive.nar.data, into: NarValidator(), limits: archive.limits)
        }
        #expect(error?.message.contains(archive.message) == true, "\(String(describing: error))")
        #expect(error?.description.contains("invalid NAR at byte") == true)
    }

    /// Whatever the archive, restoring it writes nothing beside the target.
    @Test(arguments: maliciousArchives)
    func restoringNeverWritesOutsideTheTarget(_ archive: MaliciousNar) throws {
        let dir = try TemporaryDirectory()
        let sentinel = dir.sub("sentinel")
        try FileManager.default.createDirectory(atPath: sentinel, withIntermediateDirectories: false)
        let restoreIn = dir.sub("work")
        try FileManager.default.createDirectory(atPath: restoreIn, withIntermediateDirectories: false)
        #expect(throws: NarParseError.self) {
            try parse(
                archive.nar.data, into: NarRestorer(target: restoreIn + "/target"), chunkSize: 5, limits: archive.limits
            )
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: sentinel).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["sentinel", "work"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: restoreIn).allSatisfy { $0 == "target" })
    }

    @Test func symlinkIntoTheSentinelIsCreatedButNeverFollowed() throws {
        let dir = try TemporaryDirectory()
        let sentinel = dir.sub("sentinel")
        try FileManager.default.createDirectory(atPath: sentinel, withIntermediateDirectories: false)
        let nar = rootDirectory.entry("a").symlink(sentinel).endEntry()
            .entry("a").directory().entry("x").file("pwned").endEntry().endDirectory().endEntry().endDirectory()
        #expect(throws: NarParseError.self) { try parse(nar.data, into: NarRestorer(target: dir.sub("target"))) }
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir.sub("target/a")) == sentinel)
        #expect(try FileManager.default.contentsOfDirectory(atPath: sentinel).isEmpty)
    }

    @Test func truncatedAtAnyOffsetIsReported() throws {
        let corpus = try CorpusFixture()
        let nar = try capstanDump(corpus.path("names"))
        for cut in [0, 1, 7, 8, 15, 16, 40, 100, 333, nar.count / 2, nar.count - 8, nar.count - 1] {
            let error = #expect(throws: NarParseError.self) { try parse(nar.prefix(cut), into: NarValidator()) }
            #expect(error?.message.hasPrefix("truncated NAR") == true, "cut at \(cut)")
            #expect(error?.offset == UInt64(cut))
        }
    }

    @Test func errorNamesOffsetAndEntry() throws {
        let nar = rootDirectory.entry("sub").directory().entry("b").file("1").endEntry().entry("a")
        let error = #expect(throws: NarParseError.self) { try parse(nar.data, into: NarValidator()) }
        #expect(error?.path.description == "/sub")
        // The offending name token starts 8 + 16 bytes before the end (length field, "a" padded to 8).
        #expect(error?.offset == UInt64(nar.bytes.count - 16 - 16))
        #expect(error?.description.contains("entry '/sub'") == true)
    }

    @Test func parserStaysFailedAfterAnError() throws {
        var parser = NarParser(visitor: NarValidator())
        #expect(throws: NarParseError.self) { try parser.feed(NarTokens().tokens("nope").bytes) }
        #expect(throws: NarParseError.self) { try parser.feed(header.file("x").bytes) }
        #expect(throws: NarParseError.self) { try parser.finish() }
    }

    @Test func acceptsTheDeepestAllowedNesting() throws {
        _ = try parse(nested(5).data, into: NarValidator(), limits: NarLimits(maxDepth: 5))
        _ = try parse(nested(256).data, into: NarValidator())
    }

    @Test func reportsSizeAndOffsets() throws {
        let nar = header.file("hello", executable: true)
        let parser = try parse(nar.data, into: NarLister())
        #expect(parser.offset == UInt64(nar.bytes.count))
        #expect(parser.isComplete)
        let entry = try #require(parser.visitor.entries.first)
        #expect(entry.executable && entry.size == 5)
        // Contents "hello" (8 with padding) and ")" (16) follow.
        #expect(entry.contentsOffset == UInt64(nar.bytes.count - 8 - 16))
    }
}
