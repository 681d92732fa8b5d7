import Foundation

@main enum FuzzDeploySpec {
    static func main() {
        exit(runFuzzer { data, size in fuzzOne(data, size, DeploySpecHarness.run) })
    }
}
