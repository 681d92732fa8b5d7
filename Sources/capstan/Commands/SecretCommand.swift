import ArgumentParser
import CapstanEffects
import Foundation

struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Manage the secrets file that `capstan effect run` reads (the Hercules CI agent's format).",
        subcommands: [Init.self, Add.self, Echo.self, Get.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an empty secrets file (mode 0600).")

        @OptionGroup var location: SecretsFileOption

        func run() throws {
            let path = location.resolved(environment: ProcessInfo.processInfo.environment)
            if FileManager.default.fileExists(atPath: path) {
                printError("\(path) already exists; left as it is")
                return
            }
            try SecretsFile(path: path).write()
            printError("Created \(path)")
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a secret to the secrets file; an existing one is never overwritten.",
            discussion: """
                Example: capstan secret add default-cachix-activate --string cachixActivateToken "$TOKEN" \
                --owner my-org --repo my-repo --default-branch-only
                """
        )

        @OptionGroup var location: SecretsFileOption
        @Argument(help: "The secret's name, as secretsMap refers to it.") var name: String
        @OptionGroup var data: SecretDataOptions
        @OptionGroup var condition: SecretConditionOptions

        func run() throws {
            let path = location.resolved(environment: ProcessInfo.processInfo.environment)
            var file = SecretsFile(path: path)
            if FileManager.default.fileExists(atPath: path) { file = try SecretsFile.load(path) }
            let secret = Secret(data: try data.build().data, condition: try condition.build())
            try file.add(name: name, secret: secret)
            try file.write()
            printError("Added secret \(name) to \(path)")
        }
    }

    struct Echo: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a secret as secrets.json holds it, without writing any file.")

        @OptionGroup var data: SecretDataOptions
        @OptionGroup var condition: SecretConditionOptions

        func run() throws {
            print(Secret(data: try data.build().data, condition: try condition.build()).json.rendered())
        }
    }

    /// What `readSecretString` / `readSecretJSON` call inside an effect.
    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a value from an effect's secrets file.", shouldDisplay: false)

        @Argument(help: "The secrets file.") var file: String
        @Argument(help: "The secret's name.") var name: String
        @Argument(help: "A path into its data, such as .cachixActivateToken.") var path: String
        @Flag(help: "Print the value as JSON.") var json = false

        func run() throws {
            let secrets = try SecretsFile.load(file)
            guard let value = secrets.secrets[name]?.value(at: path) else {
                printError("Could not find path \(path) in secret \(name)")
                throw ExitCode(1)
            }
            if !json, let string = value.stringValue {
                FileHandle.standardOutput.write(Data(string.utf8))
            } else {
                FileHandle.standardOutput.write(Data(value.compact.utf8))
            }
        }
    }
}

/// The data options of `secret add` and `secret echo`; PATHs are split on `.` into nested objects.
struct SecretDataOptions: ParsableArguments {
    @Option(name: .customLong("string"), parsing: .upToNextOption, help: "PATH VALUE: a string.")
    var strings: [String] = []
    @Option(name: .customLong("string-file"), parsing: .upToNextOption, help: "PATH FILE: a string read from FILE.")
    var stringFiles: [String] = []
    @Option(name: .customLong("json"), parsing: .upToNextOption, help: "PATH JSON: a JSON value.")
    var jsons: [String] = []
    @Option(name: .customLong("password"), help: "PATH: a string read from stdin (trailing newline removed).")
    var passwords: [String] = []

    func validate() throws {
        for (option, values) in [("--string", strings), ("--string-file", stringFiles), ("--json", jsons)]
        where !values.count.isMultiple(of: 2) {
            throw ValidationError(
                "\(option) takes two values: PATH and \(option == "--string" ? "VALUE" : option == "--json" ? "JSON" : "FILE")"
            )
        }
        guard !(strings.isEmpty && stringFiles.isEmpty && jsons.isEmpty && passwords.isEmpty) else {
            throw ValidationError("give the secret's data with --string, --string-file, --json or --password")
        }
    }

    func build() throws -> Secret {
        var secret = Secret(data: [:])
        for pair in stride(from: 0, to: strings.count, by: 2) {
            try secret.set(path: strings[pair], to: .string(strings[pair + 1]))
        }
        for pair in stride(from: 0, to: stringFiles.count, by: 2) {
            let file = stringFiles[pair + 1]
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            try secret.set(path: stringFiles[pair], to: .string(String(decoding: data, as: UTF8.self)))
        }
        for pair in stride(from: 0, to: jsons.count, by: 2) {
            guard let value = try? JSONValue.parse(Data(jsons[pair + 1].utf8)) else {
                throw ValidationError("--json \(jsons[pair]): not valid JSON: \(jsons[pair + 1])")
            }
            try secret.set(path: jsons[pair], to: value)
        }
        for path in passwords {
            if isatty(STDIN_FILENO) == 1 { printError("\(path): ") }
            var line = readLine(strippingNewline: true) ?? ""
            if line.hasSuffix("\r") { line.removeLast() }
            try secret.set(path: path, to: .string(line))
        }
        return secret
    }
}

/// Who may use a secret: an explicit --condition, or one built from --owner, --repo, --default-branch-only.
struct SecretConditionOptions: ParsableArguments {
    @Option(help: "The condition as JSON, e.g. '{\"and\": [{\"isOwner\": \"org\"}, \"isDefaultBranch\"]}'.")
    var condition: String?
    @Option(help: "Only for this repository owner.") var owner: String?
    @Option(help: "Only for this repository.") var repo: String?
    @Flag(help: "Only on the repository's default branch.") var defaultBranchOnly = false

    func validate() throws {
        if condition != nil && (owner != nil || repo != nil || defaultBranchOnly) {
            throw ValidationError("give --condition, or --owner/--repo/--default-branch-only, not both")
        }
    }

    func build() throws -> SecretCondition? {
        if let condition {
            guard let json = try? JSONValue.parse(Data(condition.utf8)) else {
                throw ValidationError("--condition is not valid JSON: \(condition)")
            }
            do {
                return try SecretCondition(json: json)
            } catch {
                throw ValidationError("--condition: \(error.description)")
            }
        }
        var parts: [SecretCondition] = []
        if let owner { parts.append(.isOwner(owner)) }
        if let repo { parts.append(.isRepo(repo)) }
        if defaultBranchOnly { parts.append(.isDefaultBranch) }
        return parts.isEmpty ? nil : .and(parts)
    }
}
