import Foundation
import TestSupport
import Testing

/// Runs the built `capstan` binary.
@discardableResult
private func capstan(_ arguments: [String], input: Data? = nil, check: Bool = true) throws -> ProcessResult {
    try ProcessRunner.run([TestEnvironment.capstanBinary] + arguments, input: input, check: check)
}

private func nixOutput(_ arguments: [String]) throws -> String {
    try ProcessRunner.nix(arguments).stdoutString
}

private struct Corpus {
    let directory: TemporaryDirectory
    let root: String

    init() throws {
        directory = try TemporaryDirectory("capstan-cli-nar")
        root = directory.sub("corpus")
        try NarCorpus.create(at: root)
    }

    func path(_ item: String) -> String { item.isEmpty ? root : root + "/" + item }
}

@Suite struct NarCommandTests {
    @Test(arguments: NarCorpus.items)
    func dumpEqualsNixStoreDump(item: String) throws {
        let corpus = try Corpus()
        let ours = try capstan(["nar", "dump", corpus.path(item)]).stdout
        let theirs = try ProcessRunner.nix(["nix-store", "--dump", corpus.path(item)]).stdout
        #expect(ours == theirs, "item '\(item)'")
    }

    @Test(arguments: ["--base16", "--base32", "--base64", "--sri", nil])
    func hashPathEqualsNixHashPath(format: String?) throws {
        let corpus = try Corpus()
        let flags = format.map { [$0] } ?? []
        let paths = ["", "big", "names", "links/dangling", "deep"].map(corpus.path)
        let ours = try capstan(["hash", "path"] + flags + paths).stdoutString
        #expect(ours == (try nixOutput(["nix", "hash", "path"] + flags + paths)))
        let sha512 = try capstan(["hash", "path", "--type", "sha512"] + flags + [corpus.root]).stdoutString
        #expect(sha512 == (try nixOutput(["nix", "hash", "path", "--type", "sha512"] + flags + [corpus.root])))
    }

    @Test(arguments: ["--base16", "--base32", "--base64", "--sri", nil])
    func hashFileEqualsNixHashFile(format: String?) throws {
        let corpus = try Corpus()
        let flags = format.map { [$0] } ?? []
        let files = ["empty", "nine", "big", "script"].map(corpus.path)
        #expect(
            try capstan(["hash", "file"] + flags + files).stdoutString
                == nixOutput(["nix", "hash", "file"] + flags + files))
    }

    @Test func unreadableFileAmongSmallFilesIsNamedInTheError() throws {
        let dir = try TemporaryDirectory("capstan-cli-nar")
        #expect(chmod(dir.path, 0o755) == 0)
        let root = dir.sub("tree")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for f in 0..<100 {
            let path = root + "/f" + String(1000 + f)
            FileManager.default.createFile(atPath: path, contents: NarCorpus.deterministicBytes(count: f * 10, seed: 5))
            #expect(chmod(path, f == 50 ? 0 : 0o644) == 0)
        }
        // Not as root, whom permissions do not stop: the files after it are read ahead meanwhile.
        let asNobody = ["/usr/bin/setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        for command in [["hash", "path"], ["nar", "dump"]] {
            let result = try ProcessRunner.run(asNobody + [TestEnvironment.capstanBinary] + command + [root])
            #expect(result.status != 0)
            #expect(
                result.stderrString.contains("cannot archive '\(root)/f1050': open failed: Permission denied"),
                "\(command): \(result.stderrString)")
        }
    }

    @Test func restoreOfANixArchiveDumpsBackIdentically() throws {
        let corpus = try Corpus()
        let nar = try ProcessRunner.nix(["nix-store", "--dump", corpus.root]).stdout
        let target = corpus.directory.sub("restored")
        try capstan(["nar", "restore", target], input: nar)
        #expect(try ProcessRunner.nix(["nix-store", "--dump", target]).stdout == nar)
    }

    @Test func lsMatchesNixNarLs() throws {
        let corpus = try Corpus()
        let narFile = corpus.directory.sub("corpus.nar")
        try ProcessRunner.nix(["nix-store", "--dump", corpus.root]).stdout.write(to: URL(fileURLWithPath: narFile))
        #expect(
            try capstan(["nar", "ls", narFile]).stdoutString == nixOutput(["nix", "nar", "ls", "-R", narFile, "/"]))
        #expect(
            try capstan(["nar", "ls", "-l", narFile]).stdoutString
                == nixOutput(["nix", "nar", "ls", "-lR", narFile, "/"]))
        #expect(
            try capstan(["nar", "ls", "--json", narFile]).stdoutString
                == nixOutput(["nix", "nar", "ls", "--json", "-R", narFile, "/"]) + "\n")
    }

    @Test func maliciousArchiveFailsAndWritesNothingOutside() throws {
        let dir = try TemporaryDirectory()
        let sentinel = dir.sub("sentinel")
        try FileManager.default.createDirectory(atPath: sentinel, withIntermediateDirectories: false)
        let nar = NarTokens().tokens("nix-archive-1").directory()
            .entry("a").symlink(sentinel).endEntry()
            .entry("a").directory().entry("x").file("pwned").endEntry().endDirectory().endEntry().endDirectory()
        let result = try capstan(["nar", "restore", dir.sub("target")], input: nar.data, check: false)
        #expect(result.status != 0)
        #expect(result.stderrString.contains("duplicate directory entry 'a'"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: sentinel).isEmpty)
    }

    @Test func errorsGoToStderrWithNonZeroExit() throws {
        let dir = try TemporaryDirectory()
        let missing = try capstan(["nar", "dump", dir.sub("missing")], check: false)
        #expect(missing.status != 0 && missing.stdout.isEmpty)
        #expect(missing.stderrString.contains("cannot archive '\(dir.sub("missing"))'"))
        let exists = try capstan(
            ["nar", "restore", dir.path], input: NarTokens().tokens("nix-archive-1").file("x").data, check: false)
        #expect(exists.status != 0 && exists.stderrString.contains("already exists"))
        let badType = try capstan(["hash", "path", "--type", "sha3", dir.path], check: false)
        #expect(badType.status != 0 && badType.stderrString.contains("unknown hash algorithm 'sha3'"))
        let truncated = try capstan(["nar", "ls", "-"], input: Data([1, 2, 3]), check: false)
        #expect(truncated.status != 0 && truncated.stderrString.contains("truncated NAR"))
    }
}
