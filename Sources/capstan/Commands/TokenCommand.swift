import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Create, list and revoke tokens (needs an admin token).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print it (shown only once).")

        @OptionGroup var client: ClientOptions
        @Option(help: "push or read (one cache, with --cache), activate or admin (the workspace).")
        var kind: TokenKind
        @Option(help: "The cache a push or read token is for.") var cache: String?
        @Option(help: "A label saying who or what uses the token.") var label: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let created = try await client.makeClient().createToken(
                CreateTokenRequest(kind: kind, cache: cache, label: label))
            if json { return try printJSON(created) }
            print(created.token)
            printError("Created \(kind.rawValue) token \(created.info.id); it is shown only once.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's tokens (never their secrets).")

        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let tokens = try await client.makeClient().tokens()
            if json { return try printJSON(tokens) }
            for token in tokens {
                let state = token.revokedAt == nil ? "active" : "revoked"
                print("\(token.id)\t\(token.kind.rawValue)\t\(token.cache ?? "-")\t\(state)\t\(token.label ?? "")")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its id.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Token id, as `capstan token list` shows it.") var id: String

        func run() async throws {
            try await client.makeClient().revokeToken(id: id)
            print("Revoked token \(id)")
        }
    }
}
