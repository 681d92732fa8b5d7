import ArgumentParser
import Foundation
import NixCore

struct StorePathCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store-path",
        abstract: "Compute the store path Nix would give to a text, a source or a fixed-output result.",
        discussion: "Nothing is added to any store; the path is printed so it can be checked or predicted.",
        subcommands: [Text.self, Source.self, Fixed.self]
    )

    /// Options every form shares.
    struct Common: ParsableArguments {
        @Option(help: "The store directory the path lives in.")
        var storeDir = StorePath.defaultStoreDir
    }

    struct Text: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The path of a text as builtins.toFile stores it.")

        @Argument(help: "File holding the exact text.")
        var file: String

        @Option(help: "Name of the store path (default: the file's name).")
        var name: String?

        @Option(name: .customLong("reference"), help: "A store path the text refers to (repeatable).")
        var references: [String] = []

        @OptionGroup var common: Common

        func run() async throws {
            let hash = try hashFile(file, algorithm: .sha256)
            let refs = try references.map { try StorePath(parsing: $0, storeDir: common.storeDir) }
            let path = try StorePath.text(
                name: name ?? baseName(of: file), textHash: hash, references: refs, storeDir: common.storeDir)
            print(path.path)
        }
    }

    struct Source: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The path 'nix-store --add' gives a file or directory with the given NAR hash.")

        @Option(help: "SHA-256 of the NAR serialisation, in any form Nix prints (e.g. from 'nix hash path').")
        var narHash: String

        @Option(help: "Name of the store path (the base name of what was added).")
        var name: String

        @Option(name: .customLong("reference"), help: "A store path the contents refer to (repeatable).")
        var references: [String] = []

        @Flag(help: "The contents refer to their own store path.")
        var selfReference = false

        @OptionGroup var common: Common

        func run() async throws {
            let hash = try NixHash(parsing: narHash, algorithm: .sha256)
            let refs = try references.map { try StorePath(parsing: $0, storeDir: common.storeDir) }
            let path = try StorePath.source(
                name: name, narHash: hash, references: refs, selfReference: selfReference, storeDir: common.storeDir)
            print(path.path)
        }
    }

    struct Fixed: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The path of a fixed-output result, as 'nix-store --add-fixed' or fetchurl give it.",
            discussion: """
                With FILE the file's bytes are hashed (flat). For recursive results pass --hash with the \
                NAR hash and --recursive.
                """)

        @Argument(help: "A regular file whose bytes are the fixed output (flat hashing).")
        var file: String?

        @Option(help: "The output's hash instead of a file, in any form Nix accepts (sha256:…, SRI).")
        var hash: String?

        @Option(help: "Hash algorithm for FILE: md5, sha1, sha256 or sha512.")
        var algorithm: String = "sha256"

        @Flag(help: "The hash is of the NAR serialisation (nix-store --add-fixed --recursive).")
        var recursive = false

        @Option(help: "Name of the store path (default: the file's name).")
        var name: String?

        @OptionGroup var common: Common

        func validate() throws {
            switch (file, hash) {
            case (nil, nil): throw ValidationError("give a FILE to hash, or --hash")
            case (.some, .some): throw ValidationError("give either a FILE or --hash, not both")
            case (.some, nil) where recursive:
                throw ValidationError("--recursive needs the NAR hash: pass --hash (e.g. from 'nix hash path')")
            case (nil, .some) where name == nil: throw ValidationError("--name is required with --hash")
            default: break
            }
            guard HashAlgorithm(rawValue: algorithm) != nil else {
                throw ValidationError("unknown --algorithm '\(algorithm)'; use md5, sha1, sha256 or sha512")
            }
        }

        func run() async throws {
            let outputHash: NixHash
            if let hash {
                outputHash = try NixHash(parsing: hash)
            } else if let file, let algo = HashAlgorithm(rawValue: algorithm) {
                outputHash = try hashFile(file, algorithm: algo)
            } else {
                throw ValidationError("give a FILE to hash, or --hash")
            }
            let path = try StorePath.fixedOutput(
                name: name ?? baseName(of: file ?? ""), method: recursive ? .recursive : .flat, hash: outputHash,
                storeDir: common.storeDir)
            print(path.path)
        }
    }
}

/// Hashes a file in chunks so large files never sit in memory whole.
private func hashFile(_ path: String, algorithm: HashAlgorithm) throws -> NixHash {
    guard let handle = FileHandle(forReadingAtPath: path) else {
        throw InputFileError(path: path, reason: "it does not exist or is not readable")
    }
    defer { try? handle.close() }
    var hasher = NixHasher(algorithm)
    do {
        while let chunk = try handle.read(upToCount: 1 << 16), !chunk.isEmpty {
            hasher.update(chunk)
        }
    } catch {
        throw InputFileError(path: path, reason: "\(error)")
    }
    return hasher.finalize()
}

private func baseName(of path: String) -> String {
    URL(fileURLWithPath: path).lastPathComponent
}
