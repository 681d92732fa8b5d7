import ArgumentParser
import CapstanClient
import Foundation

struct DeployRollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Deploy an agent's previous successful configuration again.")

    @OptionGroup var client: ClientOptions
    @Argument(help: "Agent name.") var agent: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let deployment = try await client.makeDeployClient().rollback(agent: agent)
        if json { return try printJSON(deployment) }
        print("Rolling \(agent) back to \(deployment.storePath): deployment #\(deployment.index) \(deployment.url)")
    }
}
