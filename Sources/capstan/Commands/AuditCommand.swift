import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show who did what in the workspace, newest first (needs an admin token)."
    )

    @OptionGroup var client: ClientOptions
    @Option(help: "How many events to show (at most 1000).") var limit = 100
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard (1...1000).contains(limit) else {
            throw ValidationError("--limit must be between 1 and 1000, got \(limit)")
        }
    }

    func run() async throws {
        let events = try await client.makeClient().audit(limit: limit)
        if json { return try printJSON(events) }
        let format = ISO8601DateFormatter()
        for event in events {
            let fields = [
                format.string(from: event.time), event.actor ?? "-", event.action, event.target ?? "-",
                event.detail ?? "",
            ]
            print(fields.joined(separator: "\t"))
        }
    }
}
