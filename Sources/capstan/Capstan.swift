import ArgumentParser

@main
struct Capstan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capstan",
        abstract: "Self-hosted binary cache and pull-based deployments for Nix machines.",
        version: CapstanVersion.current,
        subcommands: [
            ServeCommand.self,
            AdminTokenCommand.self,
            CacheCommand.self,
            TokenCommand.self,
            PushCommand.self,
            UseCommand.self,
            WorkspaceCommand.self,
            AgentCommand.self,
            DeployCommand.self,
            EffectCommand.self,
            SecretCommand.self,
            WatchExecCommand.self,
            AuditCommand.self,
            WebhookCommand.self,
            NarCommand.self,
            HashCommand.self,
            KeyCommand.self,
            StorePathCommand.self,
        ]
    )
}

enum CapstanVersion {
    static let current = "0.1.0"
}
