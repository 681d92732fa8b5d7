import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct WorkspaceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workspace",
        abstract: "Separate teams or fleets: each workspace has its own agents, caches and tokens.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a workspace and print its first admin token (needs an admin token of the first workspace).")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Workspace name: lowercase letters, digits and '-'.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let created = try await client.makeClient().createWorkspace(name: name)
            if json { return try printJSON(created) }
            print(created.adminToken)
            printError("Created workspace '\(name)'; the admin token above is shown only once.")
        }
    }
}
