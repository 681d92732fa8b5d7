import ArgumentParser
import CapstanClient
import Foundation

struct DeployRetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Deploy a finished deployment's store path to its agent again.")

    @OptionGroup var client: ClientOptions
    @Argument(help: "Deployment id.") var id: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let deployment = try await client.makeDeployClient().retryDeployment(id: id)
        if json { return try printJSON(deployment) }
        print("Retrying on \(deployment.agent): deployment #\(deployment.index) \(deployment.url)")
    }
}
