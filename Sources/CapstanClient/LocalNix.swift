import Foundation

/// What the local Nix knows about a valid store path (`nix path-info --json`).
public struct LocalPathInfo: Codable, Sendable, Equatable {
    public var path: String
    public var narHash: String
    public var narSize: UInt64
    public var references: [String]
    public var deriver: String?
    public var signatures: [String]?
    public var ca: String?
}

public struct NixCommandError: Error, CustomStringConvertible {
    public var command: [String]
    public var status: Int32
    public var stderr: String
    public var description: String {
        "`\(command.joined(separator: " "))` failed (exit \(status)): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
    }
}

/// A thin wrapper over the real `nix` commands the client needs.
public enum LocalNix {
    /// Every path in the closure of `paths`, with its NAR hash, size and references.
    public static func closure(of paths: [String]) throws -> [LocalPathInfo] {
        guard !paths.isEmpty else { return [] }
        let output = try run(
            ["nix", "--extra-experimental-features", "nix-command", "path-info", "--json", "--recursive"] + paths)
        do {
            return try JSONDecoder().decode([LocalPathInfo].self, from: output)
        } catch {
            throw NixCommandError(
                command: ["nix", "path-info", "--json"], status: 0, stderr: "unexpected output: \(error)")
        }
    }

    /// Runs a program found on PATH, returning stdout; stderr goes into the error.
    public static func run(_ arguments: [String], input: FileHandle? = nil) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input ?? FileHandle.nullDevice
        try process.run()
        // Read both pipes concurrently so neither fills up and blocks the child.
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        group.wait()
        guard process.terminationStatus == 0 else {
            throw NixCommandError(
                command: arguments, status: process.terminationStatus, stderr: String(decoding: errData, as: UTF8.self))
        }
        return outData
    }
}
