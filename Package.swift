// swift-tools-version:6.2
import PackageDescription

let package = Package(
    name: "capstan",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "capstan", targets: ["capstan"]),
        .library(name: "NixCore", targets: ["NixCore"]),
        // For the fuzz targets in Fuzz/, a package of their own.
        .library(name: "CapstanModel", targets: ["CapstanModel"]),
        .library(name: "CapstanEffects", targets: ["CapstanEffects"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
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
        // Every child process Capstan starts, started and supervised one way.
        .target(name: "CapstanProcess"),
        .target(
            name: "Compression",
            dependencies: ["CZstd", "CLZMA"]
        ),
        .target(
            name: "CapstanModel",
            dependencies: ["NixCore"]
        ),
        .target(
            name: "CapstanStorage",
            dependencies: [
                "CapstanModel",
                "NixCore",
                .product(name: "SQLKit", package: "sql-kit"),
                .product(name: "SQLiteKit", package: "sqlite-kit"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresKit", package: "postgres-kit"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // The S3 blob store: request signing and HTTP.
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ]
        ),
        // Every rule of the domain; no HTTP framework here.
        .target(
            name: "CapstanServices",
            dependencies: [
                "CapstanModel",
                "CapstanStorage",
                "Compression",
                "NixCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // HTTP only: authentication middleware, routes, the agent sockets, the dashboard.
        .target(
            name: "CapstanServer",
            dependencies: [
                "CapstanModel",
                "CapstanServices",
                "CapstanStorage",
                "Compression",
                "NixCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Mustache", package: "swift-mustache"),
            ],
            resources: [.copy("Dashboard/Resources"), .copy("API/openapi.yaml")]
        ),
        .target(
            name: "CapstanClient",
            dependencies: [
                "CapstanModel",
                "CapstanProcess",
                "Compression",
                "NixCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .target(
            name: "CapstanAgent",
            dependencies: [
                "CapstanModel",
                "CapstanProcess",
                "CapstanClient",
                "NixCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CapstanEffects",
            dependencies: [
                "CapstanClient",
                "CapstanProcess",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "capstan",
            dependencies: [
                "NixCore",
                "CapstanModel",
                "CapstanServer",
                "CapstanClient",
                "CapstanAgent",
                "CapstanEffects",
                "CapstanProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "CapstanProcessTests", dependencies: ["CapstanProcess", "TestSupport"]),
        .testTarget(name: "NixCoreTests", dependencies: ["NixCore", "TestSupport"]),
        .testTarget(name: "CompressionTests", dependencies: ["Compression", "NixCore", "TestSupport"]),
        .testTarget(name: "CapstanCLITests", dependencies: ["NixCore", "TestSupport", "capstan"]),
        .testTarget(
            name: "CapstanStorageTests",
            dependencies: [
                "CapstanStorage", "NixCore", "TestSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CapstanServerTests",
            dependencies: ["CapstanServer", "CapstanServices", "CapstanClient", "NixCore", "TestSupport"]),
        .testTarget(
            name: "CapstanServicesTests",
            dependencies: [
                "CapstanServices", "CapstanStorage", "CapstanModel", "NixCore", "Compression", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "CapstanAgentTests", dependencies: ["CapstanAgent", "CapstanModel", "NixCore", "TestSupport"]),
        .testTarget(name: "CapstanDeployTests", dependencies: ["CapstanModel", "NixCore", "TestSupport"]),
        .testTarget(name: "CapstanEffectsTests", dependencies: ["CapstanEffects", "CapstanModel", "TestSupport"]),
        // The conformance client must not share Capstan's types: it knows only the cachix protocol.
        .testTarget(name: "CapstanCachixTests", dependencies: ["TestSupport"], exclude: ["conformance"]),
        .target(name: "TestSupport", dependencies: ["NixCore"], path: "Tests/TestSupport"),
    ],
    swiftLanguageModes: [.v6]
)
