import ArgumentParser
import CapstanServer
import Foundation
import Logging

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Capstan server: binary caches, the push API and deployments.",
        discussion: """
            Settings come from, in increasing precedence: defaults, the configuration file (--config or \
            CAPSTAN_CONFIG), CAPSTAN_* environment variables (CAPSTAN_DATA_DIR, CAPSTAN_LISTEN, \
            CAPSTAN_PUBLIC_URL, CAPSTAN_DATABASE_URL, CAPSTAN_MAX_NAR_SIZE, CAPSTAN_CACHE_HOST, CAPSTAN_BLOB_STORE, \
            CAPSTAN_GC_INTERVAL, …) and these flags. \
            See docs/configuration.md for the file format.
            """
    )

    @Option(help: "Configuration file (key = value lines; see docs/configuration.md).")
    var config: String?

    @Option(help: "Directory for the database and blobs (default ./capstan-data).")
    var dataDir: String?

    @Option(help: "Address to listen on, HOST:PORT (default 127.0.0.1:8080).")
    var listen: String?

    @Option(help: "Address serving only /metrics and /health, HOST:PORT (default: none; see docs/configuration.md).")
    var metricsListen: String?

    @Option(help: "URL clients use to reach this server (default derived from --listen).")
    var publicURL: String?

    @Option(help: "postgres://user:password@host:port/database; absent: embedded SQLite in the data directory.")
    var databaseURL: String?

    @Option(help: "Host name under which each cache is also served as CACHE.HOST, as cachix clients expect.")
    var cacheHost: String?

    @Option(
        help: ArgumentHelp(
            "Where NARs are kept: s3://BUCKET[/PREFIX]?endpoint=URL&region=R (credentials from AWS_ACCESS_KEY_ID and "
                + "AWS_SECRET_ACCESS_KEY); absent: files under the data directory."))
    var blobStore: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: Logger.Level?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        var settings = ServerConfiguration()
        do {
            if let file = config ?? environment["CAPSTAN_CONFIG"] { try settings.apply(fileAt: file) }
            try settings.apply(environment: environment)
            if let dataDir { settings.dataDirectory = dataDir }
            if let listen { try settings.setListen(listen) }
            if let publicURL { settings.publicURL = publicURL }
            if let databaseURL { settings.databaseURL = databaseURL }
            if let cacheHost { try settings.set("cache_host", cacheHost) }
            if let metricsListen { try settings.set("metrics_listen", metricsListen) }
            if let blobStore { try settings.set("blob_store", blobStore) }
        } catch {
            throw ValidationError(error.description)
        }
        let level = logLevel ?? environment["CAPSTAN_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "capstan.server")
        let server = try await CapstanServer.open(
            configuration: settings, logger: logger, metricsRegistry: CapstanServer.bootstrapMetrics())
        let created: String?
        do {
            created = try await server.bootstrap()
        } catch {
            // Nothing half-done stays open: the database is shut down before the error is reported.
            try? await server.store.shutdown()
            throw error
        }
        if let token = created {
            // Written unbuffered so it shows even when stdout is a file or a pipe.
            FileHandle.standardOutput.write(
                Data("Admin token (shown once; also saved in \(settings.dataDirectory)/admin-token):\n\(token)\n".utf8))
        }
        try await server.run()
    }
}
