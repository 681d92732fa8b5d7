import ArgumentParser

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Activate deployments and run the agent that carries them out.",
        subcommands: [
            DeployActivateCommand.self,
            DeployDiffCommand.self,
            DeployStatusCommand.self,
            DeployCancelCommand.self,
            DeployRetryCommand.self,
            DeployRollbackCommand.self,
            DeployRolloutCommand.self,
            DeployAgentCommand.self,
            DeployRunCommand.self,
            DeployLocalCommand.self,
        ]
    )
}
