import CapstanProcess
import Foundation
import NixCore

/// What the local Nix knows about a valid store path (`nix path-info --json`).
public struct LocalPathInfo: Codable, Sendable, Equatable {
    public var path: StorePath
    public var narHash: String
    public var narSize: UInt64
    public var references: [String]
    public var deriver: String?
    public var signatures: [String]?
    public var ca: String?
}

/// A thin wrapper over the real `nix` commands the client needs.
public enum LocalNix {
    /// Every path in the closure of `paths`, with its NAR hash, size and references.
    public static func closure(of paths: [String]) throws -> [LocalPathInfo] {
        guard !paths.isEmpty else { return [] }
        let command = ["nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "--recursive"]
        let output = try run(command + paths)
        do {
            let decoder = JSONDecoder()
            decoder.userInfo[.nixStoreDir] = StorePath.defaultStoreDir
            return try decoder.decode([LocalPathInfo].self, from: output)
        } catch {
            throw CommandError(arguments: command, reason: .unexpectedOutput("\(error)"))
        }
    }

    /// Runs a program found on PATH, returning stdout; a failure (`CommandError`) carries its stderr.
    public static func run(_ arguments: [String]) throws -> Data {
        Data(try CommandRunner.run(CommandInvocation(arguments)).checked().standardOutput)
    }
}
