import Foundation
import TestSupport
import Testing

/// Every committed fuzz input, through the fuzzers' own harnesses (Fuzz/Harnesses): no finding,
/// `accepted-…` seeds accepted, `refused-…` seeds refused with an error.
@Suite struct FuzzCorpusReplayTests {
    @Test("Every fuzz target has seeds", arguments: FuzzCorpus.targets)
    func everyTargetHasSeeds(target: String) {
        #expect(FuzzCorpus.files(target).count >= 3, "\(FuzzCorpus.directory)/\(target)")
    }

    @Test(arguments: FuzzCorpus.files("FuzzNarParser"))
    func narParser(file: FuzzCorpusFile) throws {
        let verdict = try file.withBytes { try NarParserHarness.run($0) }
        #expect(verdict.mismatch(forSeedNamed: file.name) == nil)
    }

    @Test(arguments: FuzzCorpus.files("FuzzNarRestorer"))
    func narRestorer(file: FuzzCorpusFile) throws {
        let scratch = try TemporaryDirectory("capstan-restore-replay")
        let verdict = try file.withBytes { try NarRestorerHarness.run($0, scratch: scratch.path) }
        #expect(verdict.mismatch(forSeedNamed: file.name) == nil)
    }

    @Test(arguments: FuzzCorpus.files("FuzzNarInfo"))
    func narInfo(file: FuzzCorpusFile) throws {
        let verdict = try file.withBytes { try NarInfoHarness.run($0) }
        #expect(verdict.mismatch(forSeedNamed: file.name) == nil)
    }
}
