import Foundation
import NixCore
import Testing
import TestSupport

@Suite struct NarWriterTests {
    @Test(arguments: NarCorpus.items)
    func dumpMatchesNixStoreByteForByte(item: String) throws {
        let corpus = try CorpusFixture()
        let expected = try nixDump(corpus.path(item))
        #expect(try capstanDump(corpus.path(item)) == expected, "item '\(item)'")
    }

    @Test(arguments: [8192, 65536 + 5])
    func smallChunksGiveTheSameArchive(chunkSize: Int) throws {
        let corpus = try CorpusFixture()
        #expect(try capstanDump(corpus.root, chunkSize: chunkSize) == nixDump(corpus.root))
    }

    @Test(arguments: [HashAlgorithm.sha256, .sha512, .sha1, .md5])
    func hashMatchesNixHashPath(algorithm: HashAlgorithm) throws {
        let corpus = try CorpusFixture()
        let nix = try ProcessRunner.nix(["nix", "hash", "path", "--type", algorithm.rawValue, "--base16", corpus.root])
        let digest = try NarWriter.hash(path: corpus.root, algorithm: algorithm)
        #expect(digest.hash.digest(.base16) == nix.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(digest.size == UInt64(try nixDump(corpus.root).count))
    }

    @Test func hashAlsoStreamsTheArchive() throws {
        let corpus = try CorpusFixture()
        var streamed = Data()
        let digest = try NarWriter.hash(path: corpus.path("names")) { streamed.append(contentsOf: $0) }
        #expect(streamed == (try nixDump(corpus.path("names"))))
        #expect(digest.hash == NixHasher.hash(.sha256, streamed))
    }

    @Test func flatFileHashMatchesNixHashFile() throws {
        let corpus = try CorpusFixture()
        for item in ["empty", "nine", "big"] {
            let nix = try ProcessRunner.nix(["nix", "hash", "file", "--base16", corpus.path(item)])
            let hash = try NixHasher.hash(fileAtPath: corpus.path(item))
            #expect(hash.digest(.base16) == nix.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    @Test func missingPathIsNamedInTheError() throws {
        let error = #expect(throws: NarWriteError.self) { try capstanDump("/nonexistent/capstan-test") }
        #expect(error?.description.contains("'/nonexistent/capstan-test'") == true)
        #expect(error?.description.contains("No such file") == true)
    }

    @Test func unreadableEntryIsNamedWithItsFullPath() throws {
        let dir = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.sub("a/b"), withIntermediateDirectories: true)
        #expect(mkfifo(dir.sub("a/b/pipe"), 0o644) == 0)
        let error = #expect(throws: NarWriteError.self) { try capstanDump(dir.path) }
        #expect(error?.path == dir.sub("a/b/pipe"))
        #expect(error?.description.contains("not a regular file, directory or symlink") == true)
    }

    @Test func fileThatIsLongerThanItsSizeIsRejected() throws {
        // procfs files report size 0 but have contents: exactly a file that grew after fstat.
        let error = #expect(throws: NarWriteError.self) { try capstanDump("/proc/self/status") }
        #expect(error?.description.contains("the file changed while it was read") == true)
    }
}
