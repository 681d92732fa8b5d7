import ArgumentParser
import CapstanClient
import Foundation

/// Where the server is and which token to present, shared by every client command.
struct ClientOptions: ParsableArguments {
    @Option(help: "Server URL (default: $CAPSTAN_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Option(help: "API token (default: $CAPSTAN_TOKEN).")
    var token: String?

    var resolvedURL: String {
        url ?? ProcessInfo.processInfo.environment["CAPSTAN_URL"] ?? "http://127.0.0.1:8080"
    }

    var resolvedToken: String? {
        token ?? ProcessInfo.processInfo.environment["CAPSTAN_TOKEN"]
    }

    func makeClient() -> CapstanAPIClient {
        CapstanAPIClient(baseURL: resolvedURL, token: resolvedToken)
    }
}
