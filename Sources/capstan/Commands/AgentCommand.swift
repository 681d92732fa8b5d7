import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Register the machines that deployments go to (needs an admin token).",
        subcommands: [Create.self, List.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an agent and print its token (shown only once).")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Agent name, as deploy.json names it: lowercase letters, digits and '-'.") var name: String
        @Option(help: "The cache the agent substitutes from (default: the workspace's first cache).") var cache: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let created = try await client.makeClient().createAgent(CreateAgentRequest(name: name, cache: cache))
            if json { return try printJSON(created) }
            print(created.token)
            printError(
                "Registered agent '\(name)'. Start it on the machine with:\n"
                    + "  CAPSTAN_AGENT_TOKEN=<the token above> capstan deploy agent \(name) --url \(client.resolvedURL)"
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List agents: online, system, version, current path.")

        @OptionGroup var client: ClientOptions
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let agents = try await client.makeClient().agents()
            if json { return try printJSON(agents) }
            let rows = agents.map { agent in
                [
                    agent.name,
                    (agent.online ? "online" : "offline") + (agent.needsReboot == true ? ", needs reboot" : ""),
                    agent.lastSeen.map { ISO8601DateFormatter().string(from: $0) } ?? "never",
                    agent.system ?? "-", agent.version ?? "-", agent.currentStorePath?.path ?? "-",
                    agent.currentStatus?.rawValue ?? "-",
                ]
            }
            TextTable.print(
                header: ["AGENT", "STATE", "LAST SEEN", "SYSTEM", "VERSION", "CURRENT PATH", "LAST DEPLOYMENT"],
                rows: rows)
        }
    }
}
