import Foundation

/// Small store objects and files with unique contents, so parallel tests never share a store path.
public enum NixFixtures {
    /// A random token to make contents (and therefore store paths) unique.
    public static func nonce() -> String { UUID().uuidString.lowercased() }

    /// Writes `contents` to `name` inside `directory` and returns the file's path.
    @discardableResult
    public static func write(_ contents: String, named name: String, in directory: TemporaryDirectory) throws -> String
    {
        let path = directory.sub(name)
        try Data(contents.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A small tree (file, executable, subdirectory, symlink) with a nonce, for recursive hashing.
    public static func makeTree(named name: String, in directory: TemporaryDirectory) throws -> String {
        let root = directory.sub(name)
        let fm = FileManager.default
        try fm.createDirectory(atPath: root + "/sub", withIntermediateDirectories: true)
        try Data("tree \(nonce())\n".utf8).write(to: URL(fileURLWithPath: root + "/a.txt"))
        try Data("#!/bin/sh\necho hi\n".utf8).write(to: URL(fileURLWithPath: root + "/sub/run.sh"))
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root + "/sub/run.sh")
        try fm.createSymbolicLink(atPath: root + "/link", withDestinationPath: "a.txt")
        return root
    }

    /// Adds a file or tree with `nix-store --add` and returns the store path nix printed.
    public static func addToStore(_ path: String) throws -> String {
        try ProcessRunner.nix(["nix-store", "--add", path]).stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// True when the path is valid in the local store.
    public static func isValid(_ storePath: String) -> Bool {
        (try? ProcessRunner.run(
            ["nix-store", "--check-validity", storePath], environment: TestEnvironment.nixEnvironment))?.status == 0
    }

    /// Removes a path from the local store so a substituter has to bring it back.
    public static func delete(_ storePath: String) throws {
        try ProcessRunner.nix(["nix-store", "--delete", storePath])
    }
}
