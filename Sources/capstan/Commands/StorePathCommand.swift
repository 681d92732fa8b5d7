import ArgumentParser

struct StorePathCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-path",
        abstract: "TODO"
    )
}
