import ArgumentParser

struct DeployCancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Not available yet.")
}
