import ArgumentParser

struct DeployAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agent", abstract: "Not available yet.")
}
