import Foundation

@main enum FuzzAgentFrames {
    static func main() {
        exit(runFuzzer { data, size in fuzzOne(data, size, AgentFramesHarness.run) })
    }
}
