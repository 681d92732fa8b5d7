import Foundation
import NixCore
import TestSupport
import Testing

/// Small files of a pipelined dump are read ahead on a second thread and emitted in NAR order:
/// the bytes must stay Nix's on every shape of tree, and failures must end both threads.
@Suite struct NarReadAheadTests {
    struct SinkFailure: Error {}

    static let limit = NarWriter.readAheadFileLimit

    /// Files of every kind the read-ahead meets, in many directories, files before and after subdirectories.
    static func makeTree(at root: String) throws {
        let fm = FileManager.default
        func dir(_ path: String) throws { try fm.createDirectory(atPath: path, withIntermediateDirectories: true) }
        func file(_ path: String, size: Int, seed: Int, executable: Bool = false) throws {
            guard fm.createFile(atPath: path, contents: NarCorpus.deterministicBytes(count: size, seed: UInt64(seed)))
            else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
            if executable { try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path) }
        }
        let sizes = [0, 1, 7, 8, 9, 100, 4096, 8191, 8192, 20000, limit - 1, limit, limit + 1, 3 * limit]
        var seed = 0
        for d in 0..<24 {
            let sub = "\(root)/many/pkg\(d)"
            try dir(sub)
            for f in 0..<60 {
                seed += 1
                try file("\(sub)/f\(f)", size: sizes[(d + f) % sizes.count], seed: seed, executable: f % 7 == 0)
                if f % 9 == 0 { try fm.createSymbolicLink(atPath: "\(sub)/f\(f).l", withDestinationPath: "f\(f)") }
                // A subdirectory among the files: the parent's files read ahead wait while it is serialised.
                if f == 30 {
                    try dir("\(sub)/f30.d/inner")
                    try file("\(sub)/f30.d/x", size: 10, seed: seed)
                }
            }
        }
        // More than 1000 entries in one directory.
        try dir("\(root)/wide")
        for f in 0..<1500 {
            seed += 1
            try file("\(root)/wide/e\(f)", size: f % 50, seed: seed, executable: f % 11 == 0)
        }
        try dir("\(root)/wide/e0750.dir")
        try file("\(root)/wide/e0750.dir/y", size: 3, seed: 3)
        // Deep nesting with files on both sides of each level's subdirectory.
        var level = "\(root)/deep"
        for depth in 0..<60 {
            try dir(level)
            try file("\(level)/a", size: depth, seed: depth)
            try file("\(level)/z", size: depth * 100, seed: depth + 1, executable: depth % 2 == 0)
            try fm.createSymbolicLink(atPath: "\(level)/l", withDestinationPath: "a")
            level += "/n"
        }
        for e in 0..<5 {
            try dir("\(root)/empties/dir\(e)")
            try file("\(root)/empties/file\(e)", size: 0, seed: e)
        }
    }

    func pipelinedDump(_ path: String, chunkSize: Int = NarWriter.defaultChunkSize) throws -> Data {
        var out = Data()
        try NarWriter(chunkSize: chunkSize).pipelinedDump(path: path) { out.append(contentsOf: $0) }
        return out
    }

    // 8192 puts buffer boundaries inside files read ahead; the default is what the commands use.
    @Test(arguments: [8192, NarWriter.defaultChunkSize])
    func treeOfEveryShapeMatchesNix(chunkSize: Int) throws {
        let dir = try TemporaryDirectory("capstan-read-ahead")
        let root = dir.sub("tree")
        try Self.makeTree(at: root)
        let nar = try nixDump(root)
        #expect(try pipelinedDump(root, chunkSize: chunkSize) == nar)
        let nix = try ProcessRunner.nix(["nix", "hash", "path", "--base16", root])
        let digest = try NarWriter(chunkSize: chunkSize).hash(path: root)
        #expect(digest.hash.digest(.base16) == nix.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(digest.size == UInt64(nar.count))
    }

    @Test(arguments: [limit - 1, limit, limit + 1])
    func fileAtTheReadAheadLimitMatchesNix(size: Int) throws {
        let dir = try TemporaryDirectory("capstan-read-ahead")
        let root = dir.sub("tree")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        for f in 0..<40 {
            let contents = NarCorpus.deterministicBytes(count: f == 20 ? size : f, seed: UInt64(f))
            FileManager.default.createFile(atPath: "\(root)/f\(f)", contents: contents)
        }
        #expect(try pipelinedDump(root, chunkSize: 8192) == nixDump(root))
    }

    @Test func fileThatGrewWhileReadAheadIsRejectedAsWithoutIt() throws {
        // Each of these procfs files reports size 0 and has contents, as a file that grew after its fstat.
        let directory = "/proc/sys/kernel/random"
        let plain = #expect(throws: NarWriteError.self) { try capstanDump(directory) }
        let pipelined = #expect(throws: NarWriteError.self) { try pipelinedDump(directory) }
        #expect(pipelined?.path == "\(directory)/boot_id")
        #expect(pipelined?.path == plain?.path)
        #expect(pipelined?.reason == plain?.reason)
        #expect(pipelined?.description.contains("the file changed while it was read") == true)
    }

    @Test func failuresAmongFilesReadAheadLeaveNoThreadOrDescriptor() throws {
        let dir = try TemporaryDirectory("capstan-read-ahead")
        let root = dir.sub("tree")
        for d in 0..<3 {
            try FileManager.default.createDirectory(atPath: "\(root)/d\(d)", withIntermediateDirectories: true)
            for f in 0..<200 {
                FileManager.default.createFile(
                    atPath: "\(root)/d\(d)/f\(f)", contents: NarCorpus.deterministicBytes(count: f * 37, seed: 1))
            }
        }
        // Files after the fifo are read ahead before the serialiser reaches it.
        #expect(mkfifo("\(root)/d1/f100.fifo", 0o644) == 0)
        let before = openDescriptorsAndThreads()
        for attempt in 0..<100 {
            let error = #expect(throws: NarWriteError.self) { try pipelinedDump(root, chunkSize: 8192) }
            #expect(error?.path == "\(root)/d1/f100.fifo", "attempt \(attempt)")
            var chunks = 0
            #expect(throws: SinkFailure.self) {
                try NarWriter(chunkSize: 8192).pipelinedDump(path: root) { _ in
                    chunks += 1
                    if chunks == 20 { throw SinkFailure() }
                }
            }
        }
        // Each of the 200 failures would leave a thread and descriptors behind if one leaked; other
        // tests running meanwhile move these counts by a few.
        let after = openDescriptorsAndThreads()
        #expect(after.descriptors - before.descriptors < 50)
        #expect(after.threads - before.threads < 50)
    }

    /// The fewest open descriptors and threads of this process over a few samples.
    func openDescriptorsAndThreads() -> (descriptors: Int, threads: Int) {
        var best = (descriptors: Int.max, threads: Int.max)
        for _ in 0..<5 {
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
            let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
            best = (min(best.descriptors, descriptors), min(best.threads, threads))
            usleep(10_000)
        }
        return best
    }
}
