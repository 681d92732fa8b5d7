import CapstanStorage
import Foundation
import NIOCore
import TestSupport
import Testing

@Suite("Blob store")
struct BlobStoreTests {
    static func bytes(of store: any BlobStore, _ key: BlobKey, range: Range<Int64>? = nil) async throws -> [UInt8]? {
        guard let stream = try await store.read(key, range: range) else { return nil }
        var result: [UInt8] = []
        for try await buffer in stream { result += buffer.readableBytesView }
        return result
    }

    @Test func committedBlobAppearsWholeAndOnlyAfterCommit() async throws {
        let directory = try TemporaryDirectory()
        let store = try FileBlobStore(root: directory.sub("blobs"))
        let writer = try store.makeWriter()
        let chunk = ByteBuffer(repeating: 0x5a, count: 1 << 20)
        for _ in 0..<3 { try await writer.write(chunk) }
        try await writer.write(ByteBuffer(bytes: [1, 2, 3]))
        #expect(writer.bytesWritten == 3 * (1 << 20) + 3)
        #expect(try store.list(.nars).isEmpty)
        #expect(try store.size(of: .nar("abc.nar.zst")) == nil)
        #expect(try await Self.bytes(of: store, .nar("abc.nar.zst")) == nil)

        try await writer.commit(as: .nar("abc.nar.zst"))
        #expect(try store.size(of: .nar("abc.nar.zst")) == Int64(3 * (1 << 20) + 3))
        #expect(try store.list(.nars).map(\.key) == [.nar("abc.nar.zst")])
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.temporaryDirectory) == [])
        let all = try await Self.bytes(of: store, .nar("abc.nar.zst"))
        #expect(all?.count == 3 * (1 << 20) + 3)
        #expect(all?.suffix(3) == [1, 2, 3])
        // Ranges across chunk boundaries give exactly the bytes asked for.
        let tail = try await Self.bytes(of: store, .nar("abc.nar.zst"), range: Int64(3 << 20) - 2..<Int64(3 << 20) + 2)
        #expect(tail == [0x5a, 0x5a, 1, 2])
        #expect(store.localFile(of: .nar("abc.nar.zst")) == directory.sub("blobs") + "/nar/abc.nar.zst")
        await #expect(throws: BlobStoreError.self) { try await writer.write(ByteBuffer(bytes: [0])) }

        #expect(try store.delete(.nar("abc.nar.zst")))
        #expect(try store.delete(.nar("abc.nar.zst")) == false)
        #expect(try store.size(of: .nar("abc.nar.zst")) == nil)
        #expect(store.localFile(of: .nar("abc.nar.zst")) == nil)
    }

    @Test func blobsAndTheirDirectoryArePrivateWhateverTheUmask() async throws {
        let directory = try TemporaryDirectory()
        let previous = umask(0o022)
        defer { umask(previous) }
        let store = try FileBlobStore(root: directory.sub("blobs"))
        try await store.put([1, 2, 3], as: .staged(cacheID: "c1", fileName: "x.nar.zst"))
        let attributes = try FileManager.default.attributesOfItem(
            atPath: directory.sub("blobs") + "/staging/c1/x.nar.zst")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let root = try FileManager.default.attributesOfItem(atPath: directory.sub("blobs"))
        #expect((root[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    }

    @Test func discardedAndAbandonedWritersLeaveNothing() async throws {
        let directory = try TemporaryDirectory()
        let store = try FileBlobStore(root: directory.sub("blobs"))
        let discarded = try store.makeWriter()
        try await discarded.write(ByteBuffer(bytes: [1, 2, 3]))
        await discarded.discard()
        await discarded.discard()
        do {
            let abandoned = try store.makeWriter()
            try await abandoned.write(ByteBuffer(bytes: [4, 5, 6]))
            #expect(try FileManager.default.contentsOfDirectory(atPath: store.temporaryDirectory).count == 1)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.temporaryDirectory) == [])
        #expect(try store.list(.nars).isEmpty)
    }

    @Test func leftoversOfACrashAreRemovedAtStartButNotAnotherReplicasWritesInFlight() async throws {
        let directory = try TemporaryDirectory()
        let root = directory.sub("blobs")
        let replicaA = try FileBlobStore(root: root, owner: "a")
        let replicaB = try FileBlobStore(root: root, owner: "b")
        try await replicaA.put([7], as: .nar("kept.nar"))
        #expect(
            FileManager.default.createFile(atPath: replicaA.temporaryDirectory + "/crashed.part", contents: Data([1])))
        #expect(
            FileManager.default.createFile(atPath: replicaB.temporaryDirectory + "/in-flight.part", contents: Data([2]))
        )
        #expect(
            FileManager.default.createFile(atPath: replicaB.temporaryDirectory + "/abandoned.part", contents: Data([3]))
        )
        let old = Date().addingTimeInterval(-2 * FileBlobStore.abandonedAfter)
        try FileManager.default.setAttributes(
            [.modificationDate: old], ofItemAtPath: replicaB.temporaryDirectory + "/abandoned.part")

        // A restarts: its own leftovers go, B's upload still being written stays, B's old leftover goes.
        let restarted = try FileBlobStore(root: root, owner: "a")
        #expect(try FileManager.default.contentsOfDirectory(atPath: restarted.temporaryDirectory) == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: replicaB.temporaryDirectory) == ["in-flight.part"])
        #expect(try restarted.size(of: .nar("kept.nar")) == 1)
    }

    @Test(arguments: ["", ".", "..", "a/b", "../escape", "/abs", "nul\u{0}byte", String(repeating: "x", count: 256)])
    func namesThatCouldEscapeAreRefused(name: String) async throws {
        let directory = try TemporaryDirectory()
        let store = try FileBlobStore(root: directory.sub("blobs"))
        for key in [
            BlobKey.nar(name), .staged(cacheID: "c", fileName: name), .staged(cacheID: name, fileName: "f"),
            .part(uploadID: name, number: 1), .upload(uploadID: name),
        ] {
            let writer = try store.makeWriter()
            try await writer.write(ByteBuffer(bytes: [1]))
            await #expect(throws: BlobStoreError.self) { try await writer.commit(as: key) }
            await writer.discard()
            #expect(throws: BlobStoreError.self) { try store.path(of: key) }
            #expect(throws: BlobStoreError.self) { try store.size(of: key) }
            #expect(throws: BlobStoreError.self) { try store.delete(key) }
        }
        #expect(try store.list(.nars).isEmpty)
        #expect(try store.list(.staged).isEmpty)
    }

    @Test func stagedUploadsAndPartsAreListedByKey() async throws {
        let directory = try TemporaryDirectory()
        let store = try FileBlobStore(root: directory.sub("blobs"))
        try await store.put(Array("nar".utf8), as: .staged(cacheID: "cache-1", fileName: "upload.nar.zst"))
        try await store.put([1], as: .part(uploadID: "u1", number: 2))
        try await store.put([2, 2], as: .part(uploadID: "u1", number: 1))
        try await store.put(Array("{}".utf8), as: .upload(uploadID: "u1"))
        // Staged files survive a restart: a two-step upload may span one.
        let again = try FileBlobStore(root: directory.sub("blobs"))
        #expect(try again.list(.staged).map(\.key) == [.staged(cacheID: "cache-1", fileName: "upload.nar.zst")])
        #expect(try again.list(.staged).first?.size == 3)
        #expect(
            Set(try again.list(.parts(uploadID: "u1")).map(\.key)) == [
                .part(uploadID: "u1", number: 1), .part(uploadID: "u1", number: 2),
            ])
        #expect(try again.list(.uploads).map(\.key) == [.upload(uploadID: "u1")])
        #expect(try await again.contents(of: .upload(uploadID: "u1")) == Array("{}".utf8))
        #expect(try await again.contents(of: .part(uploadID: "u1", number: 1), limit: 1) == nil)

        for entry in try again.list(.parts(uploadID: "u1")) { try again.delete(entry.key) }
        try again.delete(.upload(uploadID: "u1"))
        #expect(try again.list(.uploads).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory.sub("blobs") + "/multipart/u1"))
    }

    @Test func errorsNameTheFile() {
        let error = BlobStoreError.system(operation: "rename", path: "/data/blobs/tmp/x.part", errno: ENOSPC)
        #expect(error.description.contains("/data/blobs/tmp/x.part"))
        #expect(error.description.contains("rename"))
    }
}
