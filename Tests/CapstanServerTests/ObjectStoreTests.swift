import Foundation
import TestSupport
import Testing

/// Blobs in an S3-compatible object store (moto's server, with request signatures checked): two
/// servers sharing one PostgreSQL database and one bucket serve the same caches.
@Suite(.serialized) struct ObjectStoreTests {
    @Test func twoReplicasShareOneDatabaseAndOneBucket() throws {
        let temp = try TemporaryDirectory("capstan-s3")
        let s3 = try S3Server(buckets: ["capstan"], in: temp)
        let database = try PostgresServer.shared().createDatabase()
        let arguments = [
            "--database-url", database, "--blob-store", s3.blobStoreURL(bucket: "capstan", prefix: "blobs"),
        ]
        var environment = s3.environment
        environment["CAPSTAN_GC_BLOB_GRACE"] = "2s"
        let a = try ServerProcess(dataDirectory: temp.sub("a"), arguments: arguments, environment: environment)
        let b = try ServerProcess(dataDirectory: temp.sub("b"), arguments: arguments, environment: environment)
        let token = try a.adminToken
        let adminA = CapstanCLI(url: a.url, token: token)
        let adminB = CapstanCLI(url: b.url, token: token)
        let key = try adminA.createCache("shared")
        // 12 MB of random bytes: the largest NAR goes up in parts and is copied to its key.
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 12_000_000)
        try adminA.run(["push", "shared", closure[0]])
        let objects = try s3.keys(bucket: "capstan", prefix: "blobs/")
        #expect(objects.filter { $0.hasPrefix("blobs/nar/") }.count == 3, "\(objects)")
        #expect(objects.allSatisfy { $0.hasPrefix("blobs/nar/") }, "no temporary objects left: \(objects)")
        #expect(!FileManager.default.fileExists(atPath: temp.sub("a") + "/blobs/nar"))

        // Real Nix, on a machine of its own, substitutes through the other replica.
        let substituted = try NixFixtures.substituteIntoEmptyStore(
            [closure[0]], substituter: "\(b.url)/cache/shared", key: key, in: temp)
        #expect(substituted.status == 0, "\(substituted.stderrString)")
        let info = try JSONSerialization.jsonObject(with: try adminB.run(["cache", "info", "shared", "--json"]).stdout)
        #expect((info as? [String: Any])?["pathCount"] as? Int == 3)
        let verify = try adminB.run(["cache", "verify", "shared", "--json"], check: false)
        #expect(verify.status == 0, "\(verify.stdoutString)")

        // A collection through A is seen at once by B, which had the narinfo in memory.
        let hash = String(closure[0].dropFirst("/nix/store/".count).prefix(32))
        #expect(try HTTP.request("GET", "\(b.url)/cache/shared/\(hash).narinfo").status == 200)
        try adminA.run(["cache", "configure", "shared", "--retention", "0s"])
        let gc = try JSONSerialization.jsonObject(with: try adminA.run(["cache", "gc", "shared", "--json"]).stdout)
        #expect(((gc as? [String: Any])?["removed"] as? [Any])?.count == 3)
        #expect(
            try eventually(timeout: 10) {
                try HTTP.request("GET", "\(b.url)/cache/shared/\(hash).narinfo").status == 404
            })
        // After the grace period, B's collection deletes the objects.
        Thread.sleep(forTimeInterval: 2.5)
        let second = try JSONSerialization.jsonObject(with: try adminB.run(["cache", "gc", "shared", "--json"]).stdout)
        #expect((second as? [String: Any])?["blobsDeleted"] as? Int == 3)
        #expect(try s3.keys(bucket: "capstan", prefix: "blobs/").isEmpty)
    }

    @Test func narDownloadsRedirectToPresignedURLsOfTheObjects() throws {
        let temp = try TemporaryDirectory("capstan-s3-redirect")
        // moto answers presigned URLs only with its authentication off; the signature itself is checked
        // against AWS's published example in S3BlobStoreTests.
        let s3 = try S3Server(buckets: ["capstan"], authenticated: false, in: temp)
        var environment = s3.environment
        environment["CAPSTAN_NAR_REDIRECT"] = "true"
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), arguments: ["--blob-store", s3.blobStoreURL(bucket: "capstan")],
            environment: environment)
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        let key = try admin.createCache("direct")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["push", "direct", closure[0]])
        let hash = String(closure[0].dropFirst("/nix/store/".count).prefix(32))
        let narInfo = try HTTP.request("GET", "\(server.url)/cache/direct/\(hash).narinfo").text
        let url = try #require(narInfo.split(separator: "\n").first { $0.hasPrefix("URL: ") }?.dropFirst(5))
        let redirect = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "\(server.url)/cache/direct/\(url)",
        ]).stdoutString
        #expect(redirect.hasPrefix("307 \(s3.endpoint)/capstan/nar/"), "\(redirect)")
        #expect(redirect.contains("X-Amz-Signature="))
        let substituted = try NixFixtures.substituteIntoEmptyStore(
            [closure[0]], substituter: "\(server.url)/cache/direct", key: key, in: temp)
        #expect(substituted.status == 0, "\(substituted.stderrString)")
    }
}
