import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache",
        abstract: "Create, inspect and look after binary caches.",
        subcommands: [
            Create.self, Info.self, List.self, Configure.self, GarbageCollect.self, Remove.self, Verify.self,
        ]
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
            if let retention = info.retention { Self.show(retention) }
            if let statistics = info.statistics { Self.show(statistics) }
        }

        static func show(_ retention: CacheRetention) {
            print("retention:   \(retention.retention.map { "\($0) after last use" } ?? "forever")")
            print("max size:    \(retention.maxSize.map { ByteFormat.string($0) } ?? "unlimited")")
            print(
                "keeps:       each agent's current configuration, last \(retention.keepGenerations) "
                    + "successful deployments and unfinished ones, with their closures")
            if let lastGC = retention.lastGC {
                print("last GC:     \(ISO8601DateFormatter().string(from: lastGC))")
            }
        }

        static func show(_ statistics: CacheStatistics) {
            print(
                "blobs:       \(ByteFormat.string(statistics.storedBytes)) stored, "
                    + "\(ByteFormat.string(statistics.dedupSavedBytes)) saved by deduplication, "
                    + "\(ByteFormat.string(statistics.sharedBytes)) shared with other caches")
            print("last 24 h:   \(statistics.hitsLastDay) hits, \(statistics.missesLastDay) misses")
            if let next = statistics.nextGC {
                print(
                    "next GC:     would remove \(next.paths) paths, \(ByteFormat.string(next.fileBytes)) stored "
                        + "(\(ByteFormat.string(next.narBytes)) of NARs)")
            }
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

    struct Configure: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set what a cache keeps: retention after last use, a size bound, pinned generations.",
            discussion: """
                Retention counts from a path's last download or upload; paths agents need (their current \
                configuration, their last N successful deployments, unfinished deployments) and the closures \
                of those and of every path kept are never removed. With --max-size, garbage collection then \
                removes the least recently used paths until the cache fits.
                """)

        @OptionGroup var client: ClientOptions
        @Argument(help: "Cache name.") var name: String
        @Option(help: "Keep paths this long after their last use (30d, 12h, 0s), or 'forever'.")
        var retention: String?
        @Option(help: "Most the stored NARs may take (50G, 500MiB, bytes), or 'unlimited'.")
        var maxSize: String?
        @Option(help: "How many of each agent's last successful deployments stay pinned (default 3).")
        var keepGenerations: Int?
        @Flag(help: "Print the cache as JSON.") var json = false

        func validate() throws {
            if retention == nil && maxSize == nil && keepGenerations == nil {
                throw ValidationError("give at least one of --retention, --max-size, --keep-generations")
            }
            if let retention, retention.lowercased() != "forever", TimeSpan(parsing: retention) == nil {
                throw ValidationError(
                    "--retention '\(retention)': expected a duration such as 30d, 12h or 0s, or 'forever'")
            }
            if let maxSize, !["unlimited", "none"].contains(maxSize.lowercased()), ByteSize(parsing: maxSize) == nil {
                throw ValidationError("--max-size '\(maxSize)': expected a size such as 50G or 500MiB, or 'unlimited'")
            }
        }

        func run() async throws {
            let info = try await client.makeClient().configureCache(
                named: name,
                ConfigureCacheRequest(retention: retention, maxSize: maxSize, keepGenerations: keepGenerations))
            if json { return try printJSON(info) }
            print("Configured cache '\(info.name)':")
            if let retention = info.retention { Info.show(retention) }
        }
    }

    struct GarbageCollect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gc",
            abstract: "Remove what a cache's retention and size bound let go; print what was removed.",
            discussion: """
                The server also does this on its own every gc_interval (default 1 h). Blobs no path uses any \
                more are deleted after a grace period (gc_blob_grace, default 1 h).
                """)

        @OptionGroup var client: ClientOptions
        @Argument(help: "Cache name.") var name: String
        @Flag(help: "Only say what would be removed.") var dryRun = false
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let report = try await client.makeClient().collectGarbage(cache: name, dryRun: dryRun)
            if json { return try printJSON(report) }
            printReport(report, verb: dryRun ? "would remove" : "removed")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rm",
            abstract: "Remove store paths from a cache, with the paths that refer to them.",
            discussion: """
                Paths an agent needs (its current configuration, a rollback target, an unfinished deployment, \
                or their closures) are refused, naming the agent, unless --force.
                """)

        @OptionGroup var client: ClientOptions
        @Argument(help: "Cache name.") var name: String
        @Argument(help: "Store paths (or their base names or hashes).") var storePaths: [String]
        @Flag(help: "Remove them even if agents need them.") var force = false
        @Flag(help: "Only say what would be removed.") var dryRun = false
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let report = try await client.makeClient().removePaths(
                cache: name, RemovePathsRequest(paths: storePaths, force: force, dryRun: dryRun))
            if json { return try printJSON(report) }
            printReport(report, verb: dryRun ? "would remove" : "removed")
        }
    }
}

extension CacheCommand {
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-read every stored NAR of a cache and check it against its narinfo.",
            discussion: """
                Checks FileHash and FileSize of each stored file and NarHash and NarSize of the NAR inside. \
                Exits 1 when a path is broken; with --repair its narinfo is hidden so that Nix no longer \
                fetches it and the next push stores it again.
                """)

        @OptionGroup var client: ClientOptions
        @Argument(help: "Cache name.") var name: String
        @Flag(help: "Hide the narinfo of paths whose NAR is missing or wrong.") var repair = false
        @Flag(help: "Print the report as JSON.") var json = false

        func run() async throws {
            let showProgress = !json && isatty(STDERR_FILENO) != 0
            let report = try await client.makeClient().verifyCache(named: name, repair: repair) { step in
                guard showProgress else { return }
                let line =
                    "\r\(step.checkedBlobs)/\(step.totalBlobs) NAR files, "
                    + "\(ByteFormat.string(step.bytesRead)) of \(ByteFormat.string(step.totalBytes))"
                FileHandle.standardError.write(Data(line.utf8))
            }
            if showProgress { FileHandle.standardError.write(Data("\n".utf8)) }
            if json {
                try printJSON(report)
            } else {
                for problem in report.problems {
                    print("\(problem.storePath): \(problem.problem)\(problem.hidden ? " (hidden)" : "")")
                }
                print(
                    "\(report.cache): \(report.checkedPaths) paths in \(report.checkedBlobs) NAR files checked "
                        + "(\(ByteFormat.string(report.bytesRead))), \(report.problems.count) broken"
                        + (report.repaired ? ", \(report.problems.filter(\.hidden).count) hidden" : ""))
            }
            if !report.problems.isEmpty { throw ExitCode(1) }
        }
    }
}

/// The paths of a GC or rm report, then a summary line.
private func printReport(_ report: GCReport, verb: String) {
    for path in report.removed {
        print("\(path.storePath)\t\(ByteFormat.string(path.fileSize))\t\(path.reason)")
    }
    let summary = report.summary
    var line =
        "\(report.cache): \(verb) \(summary.paths) paths, \(ByteFormat.string(summary.fileBytes)) stored "
        + "(\(ByteFormat.string(summary.narBytes)) of NARs); \(report.keptPaths) paths kept, \(report.pinnedPaths) pinned by agents"
    if !report.dryRun && (report.blobsDeleted > 0 || report.blobsWaiting > 0) {
        line +=
            "; \(report.blobsDeleted) unused blobs deleted (\(ByteFormat.string(report.blobBytesFreed))), "
            + "\(report.blobsWaiting) waiting for their grace period"
    }
    print(line)
}
