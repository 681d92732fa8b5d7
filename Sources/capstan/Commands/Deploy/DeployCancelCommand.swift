import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct DeployCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a deployment: a pending one never runs, a running one is stopped.",
        discussion: """
            A running deployment is stopped by its agent: before the switch it just stops, after it the agent \
            rolls back to the previous configuration. It ends Cancelled once the agent reports (with "rolled \
            back" when it did); a deployment already past its commit finishes as it would have.
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: "Deployment id.") var id: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let deployment = try await client.makeDeployClient().cancelDeployment(id: id)
        if json { return try printJSON(deployment) }
        if deployment.status == .inProgress {
            print(
                "Asked \(deployment.agent) to stop deployment #\(deployment.index); it rolls back if it has switched. "
                    + "Follow it with: capstan deploy status \(deployment.id)")
        } else {
            print("Cancelled deployment #\(deployment.index) of \(deployment.agent).")
        }
    }
}
