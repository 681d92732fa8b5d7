import ArgumentParser

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the Capstan server (binary cache and deployments)."
    )

    func run() async throws {
        print("capstan serve: not yet available in this version")
    }
}
