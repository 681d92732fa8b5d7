// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "capstan",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "capstan", targets: ["capstan"]),
        .library(name: "NixCore", targets: ["NixCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"]), .brew(["zstd"])]
        ),
        .systemLibrary(
            name: "CLZMA",
            pkgConfig: "liblzma",
            providers: [.apt(["liblzma-dev"]), .brew(["xz"])]
        ),
        .target(
            name: "NixCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(
            name: "Compression",
            dependencies: ["CZstd", "CLZMA"]
        ),
        .target(
            name: "CapstanModel",
            dependencies: ["NixCore"]
        ),
        .executableTarget(
            name: "capstan",
            dependencies: [
                "NixCore",
                "Compression",
                "CapstanModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "NixCoreTests", dependencies: ["NixCore", "TestSupport"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", "NixCore", "TestSupport"]),
        .testTarget(name: "CapstanCLITests", dependencies: ["NixCore", "TestSupport", "capstan"]),
        .target(name: "TestSupport", dependencies: ["NixCore"], path: "Tests/TestSupport"),
    ],
    swiftLanguageModes: [.v6]
)
