import TestSupport
import Testing

/// Every committed deploy.json fuzz input, through the fuzzer's own harness (Fuzz/Harnesses).
@Test(arguments: FuzzCorpus.files("FuzzDeploySpec"))
func deploySpecFuzzCorpusReplays(file: FuzzCorpusFile) throws {
    let verdict = try file.withBytes { try DeploySpecHarness.run($0) }
    #expect(verdict.mismatch(forSeedNamed: file.name) == nil)
}
