import Foundation

@main enum FuzzNarInfo {
    static func main() {
        exit(runFuzzer { data, size in fuzzOne(data, size, NarInfoHarness.run) })
    }
}
