import ArgumentParser
import NixCore

struct HashCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract: "Compute the hashes Nix uses for paths and files.",
        subcommands: [PathHash.self, FileHash.self]
    )

    /// How a hash is printed; the names are those of `nix hash`.
    enum Format: String, EnumerableFlag {
        case base16, base32, base64, sri

        static func help(for value: Format) -> ArgumentHelp? {
            switch value {
            case .base16: "Print the digest in hexadecimal."
            case .base32: "Print the digest in Nix's base-32."
            case .base64: "Print the digest in base-64."
            case .sri: "Print the hash in SRI form, 'sha256-<base64>' (the default)."
            }
        }

        func render(_ hash: NixHash) -> String {
            switch self {
            case .base16: hash.digest(.base16)
            case .base32: hash.digest(.nix32)
            case .base64: hash.digest(.base64)
            case .sri: hash.encoded(.sri)
            }
        }
    }

    struct Options: ParsableArguments {
        @Flag(help: "Output format (one of these; SRI when none is given).")
        var format: Format = .sri

        @Option(
            name: .customLong("type"),
            help: ArgumentHelp("Hash algorithm: md5, sha1, sha256 or sha512.", valueName: "algorithm"),
            transform: { name in
                guard let algorithm = HashAlgorithm(rawValue: name) else {
                    throw ValidationError("unknown hash algorithm '\(name)'; use md5, sha1, sha256 or sha512")
                }
                return algorithm
            })
        var algorithm: HashAlgorithm = .sha256
    }

    struct PathHash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "path",
            abstract: "Print the hash of the NAR serialisation of each path, like 'nix hash path'.")

        @OptionGroup var options: Options

        @Argument(help: "Files, directories or symlinks to hash (symlinks are hashed, not followed).")
        var paths: [String]

        func run() async throws {
            for path in paths {
                let digest = try NarWriter.hash(path: path, algorithm: options.algorithm)
                print(options.format.render(digest.hash))
            }
        }
    }

    struct FileHash: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "file",
            abstract: "Print the hash of each file's contents, like 'nix hash file'.")

        @OptionGroup var options: Options

        @Argument(help: "Regular files whose contents are hashed.")
        var files: [String]

        func run() async throws {
            for file in files {
                print(options.format.render(try NixHasher.hash(fileAtPath: file, algorithm: options.algorithm)))
            }
        }
    }
}
