import ArgumentParser

struct NarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nar",
        abstract: "TODO"
    )
}
