import TestSupport
import Testing

/// Every committed secrets.json fuzz input, through the fuzzer's own harness (Fuzz/Harnesses).
@Test(arguments: FuzzCorpus.files("FuzzSecretsFile"))
func secretsFileFuzzCorpusReplays(file: FuzzCorpusFile) throws {
    let verdict = try file.withBytes { try SecretsFileHarness.run($0) }
    #expect(verdict.mismatch(forSeedNamed: file.name) == nil)
}
