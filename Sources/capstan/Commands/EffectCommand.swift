import ArgumentParser
import CapstanClient
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
            do {
                let caches = try BinaryCacheConfiguration.load(cachesPath)
                let effect = try EffectPreparation(logger: logger).prepare(
                    EffectTarget(argument: target, file: file))
                let secretsMap = try effect.derivation.secretsMap()
                var granted: [String: Secret] = [:]
                if !secretsMap.isEmpty || FileManager.default.fileExists(atPath: secretsPath) {
                    let context = SecretContext(
                        owner: owner, repo: repo, branch: branch, tag: tag, defaultBranch: defaultBranch)
                    granted = try SecretsFile.load(secretsPath).selection(
                        for: secretsMap, context: context, friendly: true, logger: logger)
                }
                try await PrebuiltPush(logger: logger).push(effect.prebuilt, to: caches.caches)
                let status = try EffectRunner(logger: logger).run(effect, secrets: granted)
                if status != 0 {
                    printError("effect \(effect.derivation.path) failed with exit status \(status)")
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

/// Pushes what an effect is about to hand to agents, so that they can always substitute it.
struct PrebuiltPush {
    let logger: Logger

    func push(_ paths: [String], to caches: [BinaryCache]) async throws {
        guard !paths.isEmpty else { return }
        for cache in caches {
            switch cache {
            case .capstan(let name, let url, let cacheName, let token):
                printError(
                    "pushing \(paths.count) prebuilt paths and their closure to \(name) (\(url), cache \(cacheName))")
                let pusher = Pusher(client: CapstanAPIClient(baseURL: url, token: token), cache: cacheName)
                let display = PushProgressDisplay(interactive: false)
                let summary = try await pusher.push(paths: paths) { display.handle($0) }
                printError("\(name): \(summary.uploaded.count) uploaded, \(summary.alreadyPresent) already there")
            case .nix(let name, let storeURI, _, let signingKeys):
                printError("copying \(paths.count) prebuilt paths and their closure to \(name) (\(storeURI))")
                try Self.sign(paths, with: signingKeys)
                _ = try LocalNix.run(
                    ["nix", "--extra-experimental-features", "nix-command", "copy", "--to", storeURI] + paths)
            case .cachix(let name, _, _, _):
                logger.warning(
                    "binary cache \(name) is a CachixCache; capstan pushes only to CapstanCache and NixCache entries")
            }
        }
    }

    private static func sign(_ paths: [String], with keys: [String]) throws {
        for key in keys {
            let file = NSTemporaryDirectory() + "capstan-signing-\(UUID().uuidString)"
            guard
                FileManager.default.createFile(
                    atPath: file, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
            else { throw ValidationError("cannot write a temporary key file") }
            defer { try? FileManager.default.removeItem(atPath: file) }
            _ = try LocalNix.run(
                [
                    "nix", "--extra-experimental-features", "nix-command", "store", "sign", "--recursive", "--key-file",
                    file,
                ]
                    + paths)
        }
    }
}
