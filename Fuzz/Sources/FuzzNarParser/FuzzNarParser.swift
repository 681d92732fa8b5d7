import Foundation

@main enum FuzzNarParser {
    static func main() {
        exit(runFuzzer { data, size in fuzzOne(data, size, NarParserHarness.run) })
    }
}
