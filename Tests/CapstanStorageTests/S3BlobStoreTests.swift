import Foundation
import Logging
import NIOCore
import TestSupport
import Testing

@testable import CapstanStorage

/// The object-store blob store against moto's S3 server with authentication enforced: the same
/// contract as the filesystem store (whole blobs under their key only after commit, ranges,
/// listing by prefix, deletes), multipart uploads for large blobs, and signatures that fail when wrong.
@Suite("S3 blob store")
struct S3BlobStoreTests {
    static let logger = Logger(label: "capstan.s3.tests")

    static func open(_ server: S3Server, bucket: String = "blobs", prefix: String = "capstan", owner: String = "test")
        async throws -> S3BlobStore
    {
        let location = try S3Location(
            url: server.blobStoreURL(bucket: bucket, prefix: prefix), environment: server.environment)
        return try await S3BlobStore.open(location: location, owner: owner, partSize: 5 << 20, logger: logger)
    }

    static func bytes(of store: any BlobStore, _ key: BlobKey, range: Range<Int64>? = nil) async throws -> [UInt8]? {
        guard let stream = try await store.read(key, range: range) else { return nil }
        var result: [UInt8] = []
        for try await buffer in stream { result += buffer.readableBytesView }
        return result
    }

    @Test func blobsAppearWholeUnderTheirKeyOnlyOnCommitSmallOrMultipart() async throws {
        let directory = try TemporaryDirectory()
        let server = try S3Server(buckets: ["blobs"], in: directory)
        let store = try await Self.open(server)
        // Small: one PUT on commit.
        let small = try await store.makeWriter()
        try await small.write(ByteBuffer(bytes: [1, 2, 3]))
        #expect(try await store.size(of: .nar("small.nar.zst")) == nil)
        try await small.commit(as: .nar("small.nar.zst"))
        #expect(try await Self.bytes(of: store, .nar("small.nar.zst")) == [1, 2, 3])
        // Large: 12 MiB and a tail in uneven chunks, three parts, then copied to its key.
        let large = try await store.makeWriter()
        var expected: [UInt8] = []
        for index in 0..<25 {
            let chunk = [UInt8](repeating: UInt8(index), count: 500_000 + index)
            expected += chunk
            try await large.write(ByteBuffer(bytes: chunk))
        }
        #expect(large.bytesWritten == Int64(expected.count))
        #expect(try await store.list(.nars).map(\.key) == [.nar("small.nar.zst")], "nothing visible before commit")
        try await large.commit(as: .nar("large.nar.zst"))
        #expect(try await store.size(of: .nar("large.nar.zst")) == Int64(expected.count))
        #expect(try await Self.bytes(of: store, .nar("large.nar.zst")) == expected)
        let range: Range<Int64> = (5 << 20) - 3..<(5 << 20) + 5
        #expect(
            try await Self.bytes(of: store, .nar("large.nar.zst"), range: range)
                == Array(expected[Int(range.lowerBound)..<Int(range.upperBound)]))
        #expect(Set(try await store.list(.nars).map(\.key)) == [.nar("small.nar.zst"), .nar("large.nar.zst")])
        // No temporary object or unfinished upload is left behind.
        #expect(try server.keys(bucket: "blobs", prefix: "capstan/tmp/").isEmpty)
        #expect(Set(try server.keys(bucket: "blobs")) == ["capstan/nar/small.nar.zst", "capstan/nar/large.nar.zst"])
        #expect(try await store.delete(.nar("large.nar.zst")))
        #expect(try await store.delete(.nar("large.nar.zst")) == false)
        #expect(try await Self.bytes(of: store, .nar("large.nar.zst")) == nil)
        #expect(store.localFile(of: .nar("small.nar.zst")) == nil)
    }

    @Test func discardedWritersAndLeftoversOfACrashLeaveNothing() async throws {
        let directory = try TemporaryDirectory()
        let server = try S3Server(buckets: ["blobs"], in: directory)
        let store = try await Self.open(server, owner: "replica-a")
        let discarded = try await store.makeWriter()
        try await discarded.write(ByteBuffer(repeating: 7, count: 6 << 20))
        await discarded.discard()
        #expect(try server.keys(bucket: "blobs", prefix: "capstan/tmp/").isEmpty)
        // A replica that dies mid-write leaves a temporary object and an unfinished upload; its next start removes them.
        let interrupted = try await store.makeWriter()
        try await interrupted.write(ByteBuffer(repeating: 8, count: 6 << 20))
        try await store.put([1], as: .nar("done.nar"))
        let other = try await Self.open(server, owner: "replica-b")
        _ = other
        let reopened = try await Self.open(server, owner: "replica-a")
        #expect(try await reopened.listObjects(under: "capstan/tmp/").isEmpty)
        let uploads = try await reopened.client.sendForText(
            reopened.client.makeRequest(.GET, key: "", query: [("uploads", ""), ("prefix", "capstan/tmp/")]),
            what: "listing uploads")
        #expect(XMLText.blocks("Upload", in: uploads).isEmpty)
        #expect(try await Self.bytes(of: reopened, .nar("done.nar")) == [1])
    }

    @Test func stagedNarsUploadsAndPartsAreListedByKey() async throws {
        let directory = try TemporaryDirectory()
        let server = try S3Server(buckets: ["blobs"], in: directory)
        let store = try await Self.open(server, prefix: "")
        try await store.put([1], as: .staged(cacheID: "c1", fileName: "a.nar.zst"))
        try await store.put([2, 2], as: .staged(cacheID: "c2", fileName: "b.nar.xz"))
        try await store.put([3], as: .upload(uploadID: "u1"))
        try await store.put([4], as: .part(uploadID: "u1", number: 1))
        try await store.put([5], as: .part(uploadID: "u1", number: 2))
        try await store.put([6], as: .nar("n.nar"))
        #expect(
            Set(try await store.list(.staged).map(\.key))
                == [.staged(cacheID: "c1", fileName: "a.nar.zst"), .staged(cacheID: "c2", fileName: "b.nar.xz")])
        #expect(try await store.list(.staged).first { $0.size == 2 } != nil)
        #expect(try await store.list(.uploads).map(\.key) == [.upload(uploadID: "u1")])
        #expect(
            Set(try await store.list(.parts(uploadID: "u1")).map(\.key))
                == [.part(uploadID: "u1", number: 1), .part(uploadID: "u1", number: 2)])
        #expect(try await store.list(.nars).map(\.key) == [.nar("n.nar")])
        let modified = try #require(try await store.list(.nars).first?.modified)
        #expect(abs(modified.timeIntervalSinceNow) < 300)
    }

    @Test func aWrongSecretIsRefusedByTheStore() async throws {
        let directory = try TemporaryDirectory()
        let server = try S3Server(buckets: ["blobs"], in: directory)
        var environment = server.environment
        environment["AWS_SECRET_ACCESS_KEY"] = "wrong" + server.secretKey
        let location = try S3Location(url: server.blobStoreURL(bucket: "blobs"), environment: environment)
        let error = await #expect(throws: BlobStoreError.self) {
            try await S3BlobStore.open(location: location, owner: "test", logger: Self.logger)
        }
        guard case .objectStore(_, let status, _) = error else {
            Issue.record("expected an object store error, got \(String(describing: error))")
            return
        }
        #expect(status == 403)
    }

    @Test func locationsAreParsedAndCheckedWithTheirCredentials() throws {
        let credentials = ["AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret"]
        let location = try S3Location(
            url: "s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000/&region=eu-west-1", environment: credentials)
        #expect(location.bucket == "bucket")
        #expect(location.prefix == "some/prefix/")
        #expect(location.endpoint == "http://127.0.0.1:9000")
        #expect(location.region == "eu-west-1")
        #expect(location.hostHeader == "127.0.0.1:9000")
        #expect(
            try S3Location(url: "s3://b", environment: credentials).endpoint == "https://s3.us-east-1.amazonaws.com")
        for bad in ["s3://", "http://bucket", "s3://b?endpoint=ftp://x", "s3://b?color=red"] {
            #expect(throws: BlobStoreError.self, "\(bad)") { try S3Location(url: bad, environment: credentials) }
        }
        #expect(throws: BlobStoreError.self) { try S3Location(url: "s3://b", environment: [:]) }
    }

    /// The presigned-URL example of AWS's Signature Version 4 documentation ("Authenticating Requests:
    /// Using Query Parameters").
    @Test func presignedQueryMatchesAWSsPublishedExample() {
        let signer = S3Signer(
            accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            region: "us-east-1")
        let date = Date(timeIntervalSince1970: 1_369_353_600)  // 2013-05-24T00:00:00Z
        let query = signer.presignedQuery(
            method: "GET", path: "/test.txt", host: "examplebucket.s3.amazonaws.com", expires: 86400, date: date)
        #expect(
            query.first { $0.0 == "X-Amz-Signature" }?.1
                == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    }
}
