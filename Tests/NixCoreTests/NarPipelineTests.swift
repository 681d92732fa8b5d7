import Foundation
import NixCore
import TestSupport
import Testing

/// The pipelined writer (a reading thread filling a ring of buffers) must produce Nix's bytes
/// whatever the buffer size, and stop cleanly when either side fails.
@Suite struct NarPipelineTests {
    struct SinkFailure: Error {}

    func pipelinedDump(_ path: String, chunkSize: Int, depth: Int = NarWriter.pipelineDepth) throws -> Data {
        var out = Data()
        try NarWriter(chunkSize: chunkSize).pipelinedDump(path: path, depth: depth) { out.append(contentsOf: $0) }
        return out
    }

    @Test(arguments: NarCorpus.items)
    func eachItemMatchesNixStoreDump(item: String) throws {
        let corpus = try CorpusFixture()
        #expect(try pipelinedDump(corpus.path(item), chunkSize: 8192) == nixDump(corpus.path(item)), "item '\(item)'")
    }

    // 8192 wraps the ring hundreds of times inside the 5 MiB file; 65541 puts boundaries mid-token.
    @Test(arguments: [(8192, 2), (65536 + 5, 3), (NarWriter.defaultChunkSize, NarWriter.pipelineDepth)])
    func bufferSizesAndDepthsGiveNixsArchive(chunkSize: Int, depth: Int) throws {
        let corpus = try CorpusFixture()
        #expect(try pipelinedDump(corpus.root, chunkSize: chunkSize, depth: depth) == nixDump(corpus.root))
    }

    @Test func manySmallFilesAcrossBuffersMatchNixHashPath() throws {
        let dir = try TemporaryDirectory("capstan-pipeline")
        let root = dir.sub("tree")
        for d in 0..<20 {
            let sub = "\(root)/pkg\(d)"
            try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
            for f in 0..<50 {
                let size = [0, 1, 7, 8, 9, 100, 4096, 8191, 8192, 20000][(d + f) % 10]
                let path = "\(sub)/f\(f)"
                FileManager.default.createFile(
                    atPath: path, contents: NarCorpus.deterministicBytes(count: size, seed: UInt64(d * 100 + f)))
                if f % 7 == 0 { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
                if f % 9 == 0 {
                    try FileManager.default.createSymbolicLink(atPath: path + ".l", withDestinationPath: "f\(f)")
                }
            }
        }
        let nix = try ProcessRunner.nix(["nix", "hash", "path", "--base16", root])
        let digest = try NarWriter(chunkSize: 8192).hash(path: root)
        #expect(digest.hash.digest(.base16) == nix.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(digest.size == UInt64(try nixDump(root).count))
    }

    @Test func sinkFailureStopsTheReaderAndIsRethrown() throws {
        let corpus = try CorpusFixture()
        var chunks = 0
        // Returning at all shows the reading thread ended: the call waits for it.
        #expect(throws: SinkFailure.self) {
            try NarWriter(chunkSize: 8192).pipelinedDump(path: corpus.root) { _ in
                chunks += 1
                if chunks == 3 { throw SinkFailure() }
            }
        }
        #expect(chunks == 3)
    }

    @Test func readerFailureReachesTheCallerAfterTheBytesBeforeIt() throws {
        let dir = try TemporaryDirectory("capstan-pipeline")
        try FileManager.default.createDirectory(atPath: dir.sub("t/b"), withIntermediateDirectories: true)
        FileManager.default.createFile(
            atPath: dir.sub("t/a"), contents: NarCorpus.deterministicBytes(count: 100_000, seed: 7))
        #expect(mkfifo(dir.sub("t/b/pipe"), 0o644) == 0)
        var received = 0
        let error = #expect(throws: NarWriteError.self) {
            try NarWriter(chunkSize: 8192).pipelinedDump(path: dir.sub("t")) { received += $0.count }
        }
        #expect(error?.path == dir.sub("t/b/pipe"))
        // Every full buffer before the failure arrives; the one being filled is dropped with the error.
        #expect(received >= 100_000 - 8192)
    }

    @Test func missingPathIsNamedInTheError() throws {
        let error = #expect(throws: NarWriteError.self) {
            try NarWriter().pipelinedDump(path: "/nonexistent/capstan-test") { _ in }
        }
        #expect(error?.description.contains("'/nonexistent/capstan-test'") == true)
    }
}
