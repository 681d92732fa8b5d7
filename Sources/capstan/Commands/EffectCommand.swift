import ArgumentParser
import CapstanEffects
import Foundation
import Logging

struct EffectCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "effect",
        abstract: "Run CI effects (such as runCachixDeploy) on this machine.",
        subcommands: [Run.self]
    )

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build an effect's inputs, push what it deploys, then run it in a sandbox with its secrets.",
            discussion: """
                ATTR is an attribute path in --file (default ./default.nix); a /nix/store/….drv path runs that \
                derivation. The effect sees only the secrets its secretsMap names, in $HERCULES_CI_SECRETS_JSON, \
                and only when their conditions hold for --owner, --repo, --branch or --tag and --default-branch. \
                Before it runs, the closure of its `prebuilt` paths is pushed to every cache in the binary caches \
                file. The exit status is the effect's.
                """
        )

        @Argument(help: "Attribute path of the effect, or a .drv path.") var target: String
        @Option(help: "The Nix file to evaluate (default: ./default.nix).") var file: String?
        @OptionGroup var secretsLocation: SecretsFileOption
        @Option(help: "Binary caches file (default: binary-caches.json beside the secrets file).")
        var binaryCaches: String?
        @Option(help: "Repository owner, for secret conditions.") var owner: String?
        @Option(help: "Repository name, for secret conditions.") var repo: String?
        @Option(help: "The branch being built, for secret conditions.") var branch: String?
        @Option(help: "The tag being built, for secret conditions.") var tag: String?
        @Option(help: "The repository's default branch, for secret conditions.") var defaultBranch: String?

        func validate() throws {
            if branch != nil && tag != nil { throw ValidationError("give --branch or --tag, not both") }
        }

        func run() async throws {
            let logger = EffectLogging.logger("capstan.effect")
            let environment = ProcessInfo.processInfo.environment
            let secretsPath = secretsLocation.resolved(environment: environment)
            let cachesPath = SecretsLocation.binaryCachesFile(explicit: binaryCaches, secretsFile: secretsPath)
            let run = EffectRun(
                target: EffectTarget(argument: target, file: file), secretsFile: secretsPath,
                binaryCachesFile: cachesPath,
                context: SecretContext(owner: owner, repo: repo, branch: branch, tag: tag, defaultBranch: defaultBranch)
            )
            do {
                let (derivation, status) = try await run.run(logger: logger)
                if status != 0 {
                    printError("effect \(derivation) failed with exit status \(status)")
                    throw ExitCode(status)
                }
            } catch let error as ExitCode {
                throw error
            } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

/// `--secrets FILE`, else $HERCULES_CI_SECRETS_JSON, else $XDG_CONFIG_HOME/capstan/secrets.json.
struct SecretsFileOption: ParsableArguments {
    @Option(
        name: .customLong("secrets"),
        help: "Secrets file (default: $HERCULES_CI_SECRETS_JSON, else $XDG_CONFIG_HOME/capstan/secrets.json).")
    var path: String?

    func resolved(environment: [String: String]) -> String {
        SecretsLocation.secretsFile(explicit: path, environment: environment)
    }
}

enum EffectLogging {
    static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label) { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        logger.logLevel = .info
        return logger
    }
}
