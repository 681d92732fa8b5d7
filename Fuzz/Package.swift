// swift-tools-version:6.2
// libFuzzer targets, kept out of the main package so `swift build` at the root never builds them.
// Build and run them with scripts/fuzz; each target's seeds are in Corpus/<target>/.
// The checks live in Harnesses/ (linked into each target and into the tests that replay the
// corpus); a target adds only its entry point.
import PackageDescription

func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: ["CLibFuzzer"] + dependencies)
}

let package = Package(
    name: "capstan-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "capstan", path: ".."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        fuzzTarget("FuzzNarParser", [.product(name: "NixCore", package: "capstan")]),
        fuzzTarget("FuzzNarRestorer", [.product(name: "NixCore", package: "capstan")]),
        fuzzTarget("FuzzNarInfo", [.product(name: "NixCore", package: "capstan")]),
        fuzzTarget("FuzzDeploySpec", [.product(name: "CapstanModel", package: "capstan")]),
        fuzzTarget(
            "FuzzSecretsFile",
            [.product(name: "CapstanEffects", package: "capstan"), .product(name: "Logging", package: "swift-log")]),
        // CachixWire.swift is the server's own file (a symlink): its types are internal to CapstanServer.
        fuzzTarget("FuzzAgentFrames", [.product(name: "CapstanModel", package: "capstan")]),
    ],
    swiftLanguageModes: [.v6]
)
