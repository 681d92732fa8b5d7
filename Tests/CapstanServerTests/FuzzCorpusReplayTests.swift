import TestSupport
import Testing

/// Every committed agent frame fuzz input (Capstan's agent protocol and the cachix agent's frames),
/// through the fuzzer's own harness (Fuzz/Harnesses).
@Test(arguments: FuzzCorpus.files("FuzzAgentFrames"))
func agentFramesFuzzCorpusReplays(file: FuzzCorpusFile) throws {
    let verdict = try file.withBytes { try AgentFramesHarness.run($0) }
    #expect(verdict.mismatch(forSeedNamed: file.name) == nil)
}
