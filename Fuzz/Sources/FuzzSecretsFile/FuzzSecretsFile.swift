import Foundation

@main enum FuzzSecretsFile {
    static func main() {
        exit(runFuzzer { data, size in fuzzOne(data, size, SecretsFileHarness.run) })
    }
}
