import CapstanStorage
import Foundation
import TestSupport
import Testing

@Suite("Blob store")
struct BlobStoreTests {
    @Test func committedBlobAppearsWholeAndOnlyAfterCommit() throws {
        let directory = try TemporaryDirectory()
        let store = try BlobStore(root: directory.sub("blobs"))
        let writer = try store.makeWriter()
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 20)
        for _ in 0..<3 { try writer.write(chunk) }
        try writer.write([1, 2, 3])
        #expect(writer.bytesWritten == 3 * (1 << 20) + 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.blobDirectory) == [])
        #expect(try store.exists("abc.nar.zst") == false)

        let path = try writer.commit(as: "abc.nar.zst")
        #expect(path == store.blobDirectory + "/abc.nar.zst")
        #expect(try store.exists("abc.nar.zst"))
        #expect(try store.size("abc.nar.zst") == Int64(3 * (1 << 20) + 3))
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.temporaryDirectory) == [])
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(data.suffix(3) == Data([1, 2, 3]))
        #expect(throws: BlobStoreError.writerClosed(path: writer.temporaryPath)) { try writer.write([0]) }

        #expect(try store.remove("abc.nar.zst"))
        #expect(try store.remove("abc.nar.zst") == false)
        #expect(try store.size("abc.nar.zst") == nil)
    }

    @Test func discardedAndAbandonedWritersLeaveNothing() throws {
        let directory = try TemporaryDirectory()
        let store = try BlobStore(root: directory.sub("blobs"))
        let discarded = try store.makeWriter()
        try discarded.write([1, 2, 3])
        discarded.discard()
        discarded.discard()
        do {
            let abandoned = try store.makeWriter()
            try abandoned.write([4, 5, 6])
            #expect(FileManager.default.fileExists(atPath: abandoned.temporaryPath))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.temporaryDirectory) == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.blobDirectory) == [])
    }

    @Test func leftoversOfACrashAreRemovedAtStart() throws {
        let directory = try TemporaryDirectory()
        let root = directory.sub("blobs")
        let first = try BlobStore(root: root)
        let kept = try first.makeWriter()
        try kept.write([7])
        try kept.commit(as: "kept.nar")
        #expect(FileManager.default.createFile(atPath: first.temporaryDirectory + "/crashed.part", contents: Data([1])))

        let second = try BlobStore(root: root)
        #expect(try FileManager.default.contentsOfDirectory(atPath: second.temporaryDirectory) == [])
        #expect(try second.exists("kept.nar"))
    }

    @Test(arguments: ["", ".", "..", "a/b", "../escape", "/abs", "nul\u{0}byte", String(repeating: "x", count: 256)])
    func namesThatCouldEscapeAreRefused(name: String) throws {
        let directory = try TemporaryDirectory()
        let store = try BlobStore(root: directory.sub("blobs"))
        let writer = try store.makeWriter()
        try writer.write([1])
        #expect(throws: BlobStoreError.self) { try writer.commit(as: name) }
        #expect(throws: BlobStoreError.self) { try store.path(for: name) }
        #expect(throws: BlobStoreError.self) { try store.stagingPath(cacheID: "c", fileName: name) }
        #expect(throws: BlobStoreError.self) { try store.stagingPath(cacheID: name, fileName: "f") }
        writer.discard()
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.blobDirectory) == [])
    }

    @Test func stagedUploadsAreCommittedIntoTheBlobDirectory() throws {
        let directory = try TemporaryDirectory()
        let store = try BlobStore(root: directory.sub("blobs"))
        let staged = try store.stagingPath(cacheID: "cache-1", fileName: "upload.nar.zst")
        #expect(staged == store.stagingDirectory + "/cache-1/upload.nar.zst")
        #expect(FileManager.default.createFile(atPath: staged, contents: Data("nar".utf8)))
        // Staged files survive a restart: a two-step upload may span one.
        _ = try BlobStore(root: directory.sub("blobs"))
        #expect(FileManager.default.fileExists(atPath: staged))

        let path = try store.commitStaged(cacheID: "cache-1", fileName: "upload.nar.zst", as: "final.nar.zst")
        #expect(path == store.blobDirectory + "/final.nar.zst")
        #expect(!FileManager.default.fileExists(atPath: staged))
        #expect(try store.size("final.nar.zst") == 3)
        #expect(throws: BlobStoreError.self) {
            try store.commitStaged(cacheID: "cache-1", fileName: "upload.nar.zst", as: "again.nar.zst")
        }
        #expect(try store.removeStaged(cacheID: "cache-1", fileName: "upload.nar.zst") == false)
    }

    @Test func errorsNameTheFile() {
        let error = BlobStoreError.system(operation: "rename", path: "/data/blobs/tmp/x.part", errno: ENOSPC)
        #expect(error.description.contains("/data/blobs/tmp/x.part"))
        #expect(error.description.contains("rename"))
    }
}
