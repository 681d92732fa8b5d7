import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Create and inspect binary caches.",
        subcommands: [Create.self, Info.self, List.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a cache with its own ed25519 signing key and print its public key.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Cache name: lowercase letters, digits and '-'.") var name: String
        @Flag(help: "Anyone may read the cache without a token.") var `public` = false
        @Option(help: "Signing key name (default NAME-1, or NAME.HOST-1 when the server has a cache_host).")
        var keyName: String?
        @Option(help: "Compression of stored NARs: zstd (default), xz or none.") var compression: String?
        @Flag(help: "Print the cache as JSON.") var json = false

        func run() async throws {
            let info = try await client.makeClient().createCache(
                CreateCacheRequest(name: name, isPublic: `public`, keyName: keyName, compression: compression))
            if json { return try printJSON(info) }
            print("Created \(info.isPublic ? "public" : "private") cache '\(info.name)' at \(info.url)")
            print("Public key: \(info.publicKey)")
        }
    }

    struct Info: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a cache: URL, key, size.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Cache name.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let info = try await client.makeClient().cache(named: name)
            if json { return try printJSON(info) }
            print("name:        \(info.name)")
            print("url:         \(info.url)")
            print("visibility:  \(info.isPublic ? "public" : "private")")
            print("public key:  \(info.publicKey)")
            print("compression: \(info.compression)")
            print("paths:       \(info.pathCount ?? 0)")
            print("NAR size:    \(ByteFormat.string(info.narSize ?? 0))")
            print("stored size: \(ByteFormat.string(info.fileSize ?? 0))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the caches this token can see.")

        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let caches = try await client.makeClient().caches()
            if json { return try printJSON(caches) }
            for cache in caches {
                print(
                    "\(cache.name)\t\(cache.isPublic ? "public" : "private")\t\(cache.pathCount ?? 0) paths\t\(cache.url)"
                )
            }
        }
    }
}
