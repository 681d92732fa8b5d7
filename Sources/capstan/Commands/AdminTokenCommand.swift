import ArgumentParser
import CapstanServer
import Foundation
import Logging

struct AdminTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token",
        abstract: "Recover access to a server from its data directory.",
        subcommands: [Reset.self]
    )

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a new admin token of the default workspace and write it to DATA_DIR/admin-token.",
            discussion: """
                Works with the server stopped or running (it opens the same database). Use it when the \
                admin token was lost or every admin token was revoked. The token is printed and saved.
                """
        )

        @Option(help: "The server's data directory.") var dataDir: String
        @Option(help: "postgres://… when the server uses PostgreSQL; absent: the SQLite file in the data directory.")
        var databaseURL: String?
        @Option(help: "The workspace whose admin token this is (default: default).") var workspace: String?

        func run() async throws {
            var settings = ServerConfiguration()
            settings.dataDirectory = dataDir
            settings.databaseURL = databaseURL
            if let workspace { settings.defaultWorkspace = workspace }
            var logger = Logger(label: "capstan.admin-token")
            logger.logLevel = .warning
            let token = try await CapstanServer.resetAdminToken(configuration: settings, logger: logger)
            FileHandle.standardOutput.write(Data("\(token)\n".utf8))
        }
    }
}
