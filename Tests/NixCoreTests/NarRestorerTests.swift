import Foundation
import NixCore
import Testing
import TestSupport

@Suite struct NarRestorerTests {
    @Test(arguments: NarCorpus.items)
    func restoringANixArchiveGivesTheSameTree(item: String) throws {
        let corpus = try CorpusFixture()
        let nar = try nixDump(corpus.path(item))
        let target = corpus.directory.sub("restored")
        _ = try parse(nar, into: NarRestorer(target: target))
        #expect(try nixDump(target) == nar, "item '\(item)'")
    }

    @Test func permissionsMatchNixStoreRestore() throws {
        let corpus = try CorpusFixture()
        let nar = try nixDump(corpus.root)
        let ours = corpus.directory.sub("ours")
        let theirs = corpus.directory.sub("theirs")
        _ = try parse(nar, into: NarRestorer(target: ours))
        try ProcessRunner.run(
            ["nix-store", "--restore", theirs], environment: TestEnvironment.nixEnvironment, input: nar, check: true)
        #expect(try modes(of: ours) == modes(of: theirs))
    }

    /// Chunk sizes that split length fields, tokens and padding at every position.
    @Test(arguments: [1, 3, 7, 8, 9, 4096])
    func roundTripsWhateverTheChunkSize(chunkSize: Int) throws {
        let corpus = try CorpusFixture()
        let source = corpus.path("names")
        let nar = try capstanDump(source)
        let target = corpus.directory.sub("restored")
        let parser = try parse(nar, into: NarRestorer(target: target), chunkSize: chunkSize)
        #expect(parser.offset == UInt64(nar.count))
        #expect(try capstanDump(target) == nar)
    }

    @Test func existingTargetIsRefused() throws {
        let dir = try TemporaryDirectory()
        let nar = NarTokens().tokens("nix-archive-1").file("x")
        let error = #expect(throws: NarRestoreError.self) { try parse(nar.data, into: NarRestorer(target: dir.path)) }
        #expect(error?.reason == .targetExists)
        #expect(error?.description.contains("already exists") == true)
    }

    @Test func listerReportsEveryEntry() throws {
        let corpus = try CorpusFixture()
        let nar = try capstanDump(corpus.path("links"))
        let entries = try parse(nar, into: NarLister()).visitor.entries
        #expect(entries.map(\.path.relativePath) == ["", "absolute", "dangling", "relative"])
        #expect(entries.map(\.kind) == [.directory, .symlink, .symlink, .symlink])
        #expect(entries.last?.target == Array("../one".utf8))
    }

    @Test func listingMatchesNixNarLs() throws {
        let corpus = try CorpusFixture()
        let narFile = corpus.directory.sub("corpus.nar")
        try nixDump(corpus.root).write(to: URL(fileURLWithPath: narFile))
        let entries = try parse(try Data(contentsOf: URL(fileURLWithPath: narFile)), into: NarLister()).visitor.entries
        let json = try ProcessRunner.nix(["nix", "nar", "ls", "--json", "-R", narFile, "/"]).stdoutString
        #expect(NarLister.json(entries) == json.trimmingCharacters(in: .whitespacesAndNewlines))
        let long = try ProcessRunner.nix(["nix", "nar", "ls", "-l", "-R", narFile, "/"]).stdoutString
        #expect(NarLister.lines(entries, long: true).joined(separator: "\n") + "\n" == long)
    }

    @Test func validatorCounts() throws {
        let corpus = try CorpusFixture()
        let validator = try parse(try capstanDump(corpus.path("names")), into: NarValidator()).visitor
        #expect(validator.directories == 2)
        #expect(validator.regularFiles == NarCorpus.awkwardNames.count + 1)
        #expect(validator.symlinks == 0)
    }
}
