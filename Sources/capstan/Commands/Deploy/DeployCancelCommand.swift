import ArgumentParser
import CapstanClient
import Foundation

struct DeployCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a deployment its agent has not started yet.")

    @OptionGroup var client: ClientOptions
    @Argument(help: "Deployment id.") var id: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let deployment = try await client.makeDeployClient().cancelDeployment(id: id)
        if json { return try printJSON(deployment) }
        print("Cancelled deployment #\(deployment.index) of \(deployment.agent).")
    }
}
