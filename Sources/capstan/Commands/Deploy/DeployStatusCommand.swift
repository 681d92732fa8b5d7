import ArgumentParser

struct DeployStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Not available yet.")
}
