import ArgumentParser
import Foundation
import NixCore

struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Create and inspect the ed25519 keys that sign binary cache narinfo files.",
        discussion: """
            Keys use Nix's own file format, so they are interchangeable with \
            'nix-store --generate-binary-cache-key' and usable as 'secret-key-files' or 'trusted-public-keys'.
            """,
        subcommands: [Generate.self, Public.self]
    )

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a signing key pair and print its public key.")

        @Argument(help: "Key name, conventionally the cache host and a generation number (cache.example.org-1).")
        var name: String

        @Option(help: "Where to write the secret key (created with mode 0600).")
        var secretFile: String

        @Option(help: "Where to write the public key, the 'name:base64' text for trusted-public-keys.")
        var publicFile: String

        @Flag(help: "Replace existing key files instead of refusing.")
        var force = false

        func validate() throws {
            guard secretFile != publicFile else {
                throw ValidationError("--secret-file and --public-file must be different files")
            }
            guard !force else { return }
            for file in [secretFile, publicFile] where FileManager.default.fileExists(atPath: file) {
                throw ValidationError("'\(file)' already exists; pass --force to replace it")
            }
        }

        func run() async throws {
            let key = try NixSecretKey.generate(name: name)
            try key.write(to: secretFile, overwrite: force)
            try key.publicKey.write(to: publicFile, overwrite: force)
            print(key.publicKey.rendered)
        }
    }

    struct Public: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key belonging to a secret key file.")

        @Argument(help: "A secret key file, from 'capstan key generate' or 'nix-store --generate-binary-cache-key'.")
        var secretFile: String

        func run() async throws {
            print(try NixSecretKey(contentsOfFile: secretFile).publicKey.rendered)
        }
    }
}
