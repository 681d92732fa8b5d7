import ArgumentParser

struct DeployActivateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "activate", abstract: "Not available yet.")
}
