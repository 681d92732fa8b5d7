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

    /// The `let` binding `mk = name: script: derivation { … }` of test expressions: a plain derivation
    /// built by a shell script, with a PATH (the builder's is empty otherwise) and no nixpkgs.
    public static let mkBinding = """
        mk = name: script: derivation {
          inherit name;
          system = builtins.currentSystem;
          builder = "/bin/sh";
          PATH = "/usr/bin:/bin";
          args = [ "-c" script ];
        };
        """

    /// Builds a closure of three paths (top → mid → dep) and returns them in that order.
    /// `payloadBytes` of random data in `dep` makes the NAR as large as a test needs.
    public static func buildClosure(in directory: String, payloadBytes: Int = 100_000) throws -> [String] {
        let nonce = UUID().uuidString.lowercased()
        let expression = """
            let
              \(mkBinding)
              dep = mk "capstan-dep" ''
                mkdir -p $out/lib $out/bin
                echo \(nonce) > $out/lib/nonce
                head -c \(payloadBytes) /dev/urandom > $out/lib/payload
                printf '#!/bin/sh\\necho hello\\n' > $out/bin/hello
                chmod +x $out/bin/hello
                ln -s ../lib/nonce $out/bin/link
              '';
              mid = mk "capstan-mid" ''
                mkdir -p $out
                echo ${dep} > $out/dep-path
                ln -s ${dep}/bin/hello $out/hello
              '';
            in mk "capstan-top" ''
              mkdir -p $out
              echo ${mid} > $out/mid-path
              echo \(nonce) > $out/nonce
            ''
            """
        let file = (directory as NSString).appendingPathComponent("closure-\(nonce).nix")
        try expression.write(toFile: file, atomically: true, encoding: .utf8)
        let top = try ProcessRunner.nix(["nix-build", "--no-out-link", file]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let all = try closure(of: top)
        // Fixed order, whatever order nix-store -qR prints: top, mid, dep.
        return ["-capstan-top", "-capstan-mid", "-capstan-dep"].compactMap { suffix in
            all.first { $0.hasSuffix(suffix) }
        }
    }

    /// The closure of a path, the path itself first.
    public static func closure(of path: String) throws -> [String] {
        let all = try ProcessRunner.nix(["nix-store", "-qR", path]).stdoutString.split(separator: "\n").map(String.init)
        return [path] + all.filter { $0 != path }
    }

    /// Removes several paths at once (a closure, top first) so that realising them must substitute.
    public static func delete(_ paths: [String]) throws {
        try ProcessRunner.nix(["nix-store", "--delete"] + paths)
        for path in paths where FileManager.default.fileExists(atPath: path) {
            throw TestFailure("\(path) is still in the store after nix-store --delete")
        }
    }
}

extension NixFixtures {
    /// Realises `paths` on a machine of its own: an empty `/nix` (bound over the real one in a private
    /// mount namespace) and its own Nix caches, so everything must come from `substituter`.
    public static func substituteIntoEmptyStore(
        _ paths: [String], substituter: String, key: String, in directory: TemporaryDirectory
    ) throws -> ProcessResult {
        let machine = directory.sub("empty-store-\(UUID().uuidString.lowercased())")
        try FileManager.default.createDirectory(atPath: machine + "/nix", withIntermediateDirectories: true)
        let command =
            [
                "nix-store", "-r", "--max-jobs", "0", "--option", "substituters", substituter,
                "--option", "trusted-public-keys", key, "--option", "require-sigs", "true",
                "--option", "narinfo-cache-negative-ttl", "0",
            ] + paths
        var environment = TestEnvironment.nixEnvironment
        environment["HOME"] = machine + "/home"
        environment["XDG_CACHE_HOME"] = machine + "/cache"
        return try ProcessRunner.run(
            [
                "unshare", "-m", "--propagation", "private", "sh", "-c",
                "mount --bind '\(machine)/nix' /nix && exec " + command.map { "'\($0)'" }.joined(separator: " "),
            ], environment: environment)
    }
}
