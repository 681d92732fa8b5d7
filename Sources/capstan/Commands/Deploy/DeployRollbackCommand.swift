import ArgumentParser

struct DeployRollbackCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollback", abstract: "Not available yet.")
}
