import ArgumentParser

struct DeployRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Not available yet.", shouldDisplay: false)
}
