import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct WebhookCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "webhook",
        abstract: "URLs told when a deployment finishes (needs an admin token).",
        discussion: """
            Each delivery is a POST of JSON {"event": "deployment.finished", "deployment": {…}}. With --secret, it \
            carries X-Capstan-Signature: sha256=<hex HMAC-SHA256 of the body keyed with the secret>. A delivery \
            that fails (no 2xx answer) is retried with growing waits.
            """,
        subcommands: [Add.self, List.self, Remove.self, Deliveries.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a webhook to the workspace.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "The http:// or https:// URL to POST to.") var url: String
        @Option(help: "Key for the X-Capstan-Signature HMAC; absent: deliveries are not signed.") var secret: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let hook = try await client.makeClient().addWebhook(CreateWebhookRequest(url: url, secret: secret))
            if json { return try printJSON(hook) }
            print(hook.id)
            printError("Added webhook \(hook.id) for \(hook.url)\(hook.signed ? " (signed)" : "").")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the workspace's webhooks.")

        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let hooks = try await client.makeClient().webhooks()
            if json { return try printJSON(hooks) }
            for hook in hooks { print("\(hook.id)\t\(hook.url)\t\(hook.signed ? "signed" : "unsigned")") }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a webhook by its id.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Webhook id, as `capstan webhook list` shows it.") var id: String

        func run() async throws {
            try await client.makeClient().removeWebhook(id: id)
            print("Removed webhook \(id)")
        }
    }

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show delivery attempts, newest first.")

        @OptionGroup var client: ClientOptions
        @Option(help: "Only this webhook's deliveries.") var webhook: String?
        @Option(help: "How many attempts to show (at most 1000).") var limit = 100
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let deliveries = try await client.makeClient().webhookDeliveries(webhook: webhook, limit: limit)
            if json { return try printJSON(deliveries) }
            let format = ISO8601DateFormatter()
            for delivery in deliveries {
                let outcome = delivery.delivered ? "delivered" : "failed"
                let fields = [
                    format.string(from: delivery.time), delivery.webhookID, delivery.deploymentID,
                    "attempt \(delivery.attempt)", outcome, delivery.statusCode.map(String.init) ?? "-",
                    delivery.error ?? "",
                ]
                print(fields.joined(separator: "\t"))
            }
        }
    }
}
