import Foundation
import Synchronization
import TestSupport
import Testing

/// Attacks on a running server that it must refuse: local users reading its data, uploads that
/// linger or outlive their token, cookies sent from other sites.
@Suite(.serialized) struct HardeningTests {
    let temp: TemporaryDirectory

    init() throws {
        temp = try TemporaryDirectory("capstan-hardening")
    }

    static func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// Every file under `directory` (recursively), directories left out.
    static func files(under directory: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        return try FileManager.default.subpathsOfDirectory(atPath: directory).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: directory + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
    }

    func json(_ answer: HTTP.Answer) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: answer.body) as? [String: Any], "\(answer.text)")
    }

    func bodyFile(_ bytes: Int) throws -> String {
        let path = temp.sub("body-\(UUID().uuidString)")
        try Data((0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 31) }).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func dataIsPrivateWhateverTheUmaskAndAnExposedDirectoryIsRefused() throws {
        let previous = umask(0o022)
        defer { umask(previous) }
        let data = temp.sub("private")
        let server = try ServerProcess(dataDirectory: data)
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("secret-stuff", public: false)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["push", "secret-stuff", closure[2]])
        #expect(try Self.mode(data) == 0o700)
        for file in try Self.files(under: data) {
            #expect(try Self.mode(data + "/" + file) & 0o077 == 0, "\(file) is readable by others")
        }
        #expect(try Self.files(under: data + "/blobs/nar").count == 1)
        server.stop()

        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: data)
        let refused = try ProcessRunner.run(
            [
                TestEnvironment.capstanBinary, "serve", "--data-dir", data, "--listen",
                "127.0.0.1:\(try FreePort.find())",
            ])
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("chmod 700 \(data)"), "\(refused.stderrString)")
    }

    @Test func multipartPartsNeedALiveTokenOfThatCacheAndAreSweptWithIt() throws {
        let data = temp.sub("multipart")
        var server = try ServerProcess(dataDirectory: data)
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("mine")
        _ = try admin.createCache("theirs")
        let created = try admin.run(["token", "create", "--kind", "push", "--cache", "mine", "--json"]).stdout
        let token = try #require(try JSONSerialization.jsonObject(with: created) as? [String: Any])
        let push = try #require(token["token"] as? String)
        let tokenID = try #require((token["info"] as? [String: Any])?["id"] as? String)

        let started = try json(
            HTTP.request("POST", "\(server.url)/api/v1/cache/mine/multipart-nar?compression=zst", token: push))
        let narID = try #require(started["narId"] as? String)
        let uploadID = try #require(started["uploadId"] as? String)
        let part = try bodyFile(4096)
        func putPart(cache: String, _ number: Int) throws -> Int {
            try HTTP.request(
                "PUT",
                "\(server.url)/api/v1/cache/\(cache)/multipart-nar/\(narID)/parts/\(number)?uploadId=\(uploadID)",
                bodyFile: part
            ).status
        }
        // Like a presigned URL, a part's URL carries its authority while the push token lives…
        #expect(try putPart(cache: "mine", 1) == 200)
        // …but only into the cache it was started in,
        #expect(try putPart(cache: "theirs", 2) == 404)
        #expect(try putPart(cache: "no-such-cache", 2) == 404)
        // and not once the token is revoked.
        #expect(
            try HTTP.request("DELETE", "\(server.url)/api/v1/tokens/\(tokenID)", token: try server.adminToken).status
                == 204)
        #expect(try putPart(cache: "mine", 2) == 404)
        #expect(try Self.files(under: data + "/blobs/multipart").count == 2, "part 1 and the upload's description")

        // The upload died with its token: a restart sweeps its bytes.
        server.kill()
        server = try ServerProcess(dataDirectory: data)
        try waitFor("the sweep") { try Self.files(under: data + "/blobs/multipart").isEmpty }
        server.stop()
    }

    @Test func stagedNarsExpireAndPendingSpaceIsBounded() throws {
        let data = temp.sub("staging")
        var server = try ServerProcess(dataDirectory: data, environment: ["CAPSTAN_MAX_PENDING_UPLOAD_BYTES": "100000"])
        let admin = try server.adminToken
        _ = try CapstanCLI(url: server.url, token: admin).createCache("bounded")
        let hash = String(repeating: "1", count: 52)
        let small = try HTTP.request(
            "PUT", "\(server.url)/cache/bounded/nar/\(hash).nar", token: admin, bodyFile: try bodyFile(60_000))
        #expect(small.status == 200)
        // A second NAR, while the first still waits for its narinfo, goes over the bound.
        let big = try HTTP.request(
            "PUT", "\(server.url)/cache/bounded/nar/\(String(repeating: "2", count: 52)).nar", token: admin,
            bodyFile: try bodyFile(60_000))
        #expect(big.status == 507, "\(big.text)")
        #expect(big.text.contains("unfinished uploads"))
        #expect(try Self.files(under: data + "/blobs/staging").count == 1)
        #expect(try Self.files(under: data + "/blobs/tmp").isEmpty)

        // Nobody sends the narinfo: once expired, the staged NAR is swept (at start, here).
        server.kill()
        Thread.sleep(forTimeInterval: 2.1)
        server = try ServerProcess(dataDirectory: data, environment: ["CAPSTAN_UPLOAD_EXPIRY_SECONDS": "1"])
        try waitFor("the sweep") { try Self.files(under: data + "/blobs/staging").isEmpty }
        server.stop()
    }

    @Test func parallelUploadsTogetherStayWithinThePendingBoundAndGiveBackWhatTheyDoNotUse() throws {
        let data = temp.sub("reserved")
        let server = try ServerProcess(
            dataDirectory: data, environment: ["CAPSTAN_MAX_PENDING_UPLOAD_BYTES": "100000"])
        let admin = try server.adminToken
        let cli = CapstanCLI(url: server.url, token: admin)
        _ = try cli.createCache("dropped")
        _ = try cli.createCache("parallel")
        @Sendable func nar(_ cache: String, _ letter: Character) -> String {
            "\(server.url)/cache/\(cache)/nar/\(String(repeating: letter, count: 52)).nar"
        }
        // A client that goes away in the middle of its upload gives its reserved space back.
        let slow = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "--max-time", "1", "--limit-rate", "5000", "-X", "PUT",
            "-H", "Authorization: Bearer \(admin)", "--data-binary", "@\(try bodyFile(100_000))", nar("dropped", "a"),
        ])
        #expect(slow.status != 0, "the slow upload was cut off")
        try waitFor("the dropped upload's space") {
            try HTTP.request("PUT", nar("dropped", "b"), token: admin, bodyFile: try bodyFile(100_000)).status == 200
        }
        // Six uploads at once whose sum is over the bound: three fit, the others are refused, naming the bound.
        let body = try bodyFile(30_000)
        let answers = Mutex<[(status: Int, text: String)]>([])
        DispatchQueue.concurrentPerform(iterations: 6) { index in
            let letter = Character(UnicodeScalar(UInt8(ascii: "c") + UInt8(index)))
            let answer = try? HTTP.request("PUT", nar("parallel", letter), token: admin, bodyFile: body)
            answers.withLock { $0.append((answer?.status ?? 0, answer?.text ?? "no answer")) }
        }
        let all = answers.withLock { $0 }
        #expect(all.filter { $0.status == 200 }.count == 3, "\(all.map(\.status))")
        let refused = all.filter { $0.status != 200 }
        #expect(refused.count == 3)
        for answer in refused {
            #expect(answer.status == 507)
            #expect(answer.text.contains("max_pending_upload_bytes = 100000 bytes"), "\(answer.text)")
        }
        // Nothing of the refused ones is left: neither files nor reserved space (the room left is exactly 10000).
        #expect(try Self.files(under: data + "/blobs/tmp").isEmpty)
        #expect(try Self.files(under: data + "/blobs/staging").count == 4)
        let over = try HTTP.request("PUT", nar("parallel", "x"), token: admin, bodyFile: try bodyFile(10_001))
        #expect(over.status == 507, "\(over.text)")
        let fits = try HTTP.request("PUT", nar("parallel", "y"), token: admin, bodyFile: try bodyFile(10_000))
        #expect(fits.status == 200, "\(fits.text)")
        server.stop()
    }

    @Test func sessionCookiesCountOnlyForThisServersOwnPages() throws {
        let server = try ServerProcess(dataDirectory: temp.sub("cookies"))
        let admin = try server.adminToken
        let jar = temp.sub("jar")
        let signIn = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-c", jar, "-H", "Origin: \(server.url)",
            "--data-urlencode", "token=\(admin)", "\(server.url)/sign-in",
        ])
        #expect(signIn.stdoutString == "303" || signIn.stdoutString == "302", "\(signIn.stdoutString)")
        func get(_ path: String, origin: String?, upgrade: Bool = false) throws -> String {
            var arguments = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3", "-b", jar]
            if let origin { arguments += ["-H", "Origin: \(origin)"] }
            if upgrade {
                arguments += [
                    "-H", "Connection: Upgrade", "-H", "Upgrade: websocket", "-H", "Sec-WebSocket-Version: 13",
                    "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                ]
            }
            return try ProcessRunner.run(arguments + ["\(server.url)\(path)"]).stdoutString
        }
        #expect(try get("/api/v1/agents", origin: nil) == "200")
        #expect(try get("/api/v1/agents", origin: server.url) == "200")
        #expect(try get("/api/v1/agents", origin: "http://evil.example") == "401")
        // A page of another site opening a WebSocket with the person's cookie gets no upgrade.
        #expect(try get("/ws", origin: "http://evil.example", upgrade: true) != "101")
    }

    func waitFor(_ what: String, timeout: TimeInterval = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        throw TestFailure("timed out waiting for \(what)")
    }
}

/// The first start is one recoverable step, and operators can issue an admin token from the data
/// directory whether the server runs or not.
@Suite(.serialized) struct BootstrapTests {
    @Test func aFailedFirstStartIsRecoveredAndATokenCanBeResetFromTheDataDirectory() throws {
        let temp = try TemporaryDirectory("capstan-bootstrap")
        let data = temp.sub("data")
        try FileManager.default.createDirectory(
            atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // The token file cannot be written: the first start fails, cleanly.
        try FileManager.default.createDirectory(atPath: data + "/admin-token", withIntermediateDirectories: true)
        let failed = try ProcessRunner.run([
            TestEnvironment.capstanBinary, "serve", "--data-dir", data, "--listen", "127.0.0.1:\(try FreePort.find())",
        ])
        #expect(failed.status != 0)
        #expect(failed.stderrString.contains("admin-token"), "\(failed.stderrString)")
        #expect(!failed.stderrString.contains("Fatal error"), "\(failed.stderrString)")
        try FileManager.default.removeItem(atPath: data + "/admin-token")

        // The next start does the step again: a token is written, and it works.
        let server = try ServerProcess(dataDirectory: data)
        let first = try server.adminToken
        #expect(try HTTP.request("GET", "\(server.url)/api/v1/tokens", token: first).status == 200)

        // Reset with the server running: a new token, saved in the file, accepted at once.
        let reset = try ProcessRunner.run([TestEnvironment.capstanBinary, "admin-token", "reset", "--data-dir", data])
        #expect(reset.status == 0, "\(reset.stderrString)")
        let second = reset.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(second != first)
        #expect(try server.adminToken == second)
        #expect(try HTTP.request("GET", "\(server.url)/api/v1/tokens", token: second).status == 200)
        server.stop()
    }
}
