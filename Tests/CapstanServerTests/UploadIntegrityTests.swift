import Foundation
import NixCore
import TestSupport
import Testing

/// What the server accepts is exactly what Nix would: wrong hashes, truncated uploads and
/// crashes never leave a visible path without its checked NAR.
@Suite(.serialized) struct UploadIntegrityTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI

    init() throws {
        temp = try TemporaryDirectory("capstan-integrity")
        server = try ServerProcess(dataDirectory: temp.sub("data"))
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
    }

    static func hashPart(_ path: String) -> String { String(path.dropFirst("/nix/store/".count).prefix(32)) }

    /// A zstd-compressed NAR of `path` and the header declaring it, for uploads by hand.
    /// `extra` adds string fields (deriver, ca) to the declared path info.
    func preparedUpload(
        _ path: String, narHash: String? = nil, narSize: Int? = nil, extra: [String: String] = [:]
    ) throws -> (body: String, header: String) {
        let nar = temp.sub("\(UUID().uuidString).nar")
        let dumped = try ProcessRunner.nix(["nix-store", "--dump", path]).stdout
        try dumped.write(to: URL(fileURLWithPath: nar))
        let body = nar + ".zst"
        try ProcessRunner.run(["zstd", "-q", "-f", nar, "-o", body], check: true)
        let realHash = try ProcessRunner.nix(["nix", "hash", "file", "--type", "sha256", "--base32", nar]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let references = try ProcessRunner.nix(["nix-store", "-q", "--references", path]).stdoutString
            .split(separator: "\n").map { "\"\($0)\"" }.joined(separator: ",")
        let extraFields = try extra.sorted { $0.key < $1.key }.map { key, value in
            ",\"\(key)\":"
                + String(
                    decoding: try JSONSerialization.data(withJSONObject: value, options: .fragmentsAllowed),
                    as: UTF8.self)
        }.joined()
        let json = """
            {"storePath":"\(path)","narHash":"\(narHash ?? "sha256:" + realHash)","narSize":\(narSize ?? dumped.count),\
            "references":[\(references)],"sigs":[]\(extraFields)}
            """
        return (body, "X-Capstan-Path-Info: " + Data(json.utf8).base64EncodedString())
    }

    func upload(_ cache: String, _ path: String, _ prepared: (body: String, header: String), extraCurl: [String] = [])
        throws -> HTTP.Answer
    {
        try HTTP.request(
            "PUT", "\(server.url)/api/v1/caches/\(cache)/paths/\(Self.hashPart(path))", token: admin.token,
            headers: [prepared.header, "Content-Encoding: zstd"], bodyFile: prepared.body)
    }

    /// An upload throttled by curl, so that it is still in flight when the test interrupts it.
    func startSlowUpload(_ cache: String, _ path: String, _ prepared: (body: String, header: String), rate: String)
        throws -> Process
    {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments = [
            "-s", "-o", "/dev/null", "-X", "PUT", "--limit-rate", rate, "-H",
            "Authorization: Bearer \(admin.token ?? "")",
            "-H", prepared.header, "-H", "Content-Encoding: zstd", "--data-binary", "@\(prepared.body)",
            "\(server.url)/api/v1/caches/\(cache)/paths/\(Self.hashPart(path))",
        ]
        try curl.run()
        return curl
    }

    /// Every narinfo the cache shows has its NAR, and that NAR hashes to NarHash.
    func assertConsistent(_ cache: String, paths: [String]) throws {
        for path in paths {
            let answer = try HTTP.request(
                "GET", "\(server.url)/cache/\(cache)/\(Self.hashPart(path)).narinfo", token: admin.token)
            if answer.status == 404 { continue }
            #expect(answer.status == 200)
            let info = try NarInfo(parsing: answer.text)
            let file = temp.sub("check-\(UUID().uuidString)")
            let nar = try HTTP.request("GET", "\(server.url)/cache/\(cache)/\(info.url)", token: admin.token)
            #expect(nar.status == 200)
            try nar.body.write(to: URL(fileURLWithPath: file + ".zst"))
            try ProcessRunner.run(["zstd", "-q", "-d", "-f", file + ".zst", "-o", file], check: true)
            let hash = try ProcessRunner.nix(["nix", "hash", "file", "--type", "sha256", "--base32", file]).stdoutString
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect("sha256:" + hash == info.narHash.narInfoString, "NAR of \(path) does not match its narinfo")
        }
    }

    @Test func narWhoseContentDoesNotMatchIsRefused() throws {
        _ = try admin.createCache("strict")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        let dep = closure[2]
        let wrong = "sha256:" + String(repeating: "0", count: 52)
        let answer = try upload("strict", dep, try preparedUpload(dep, narHash: wrong))
        #expect(answer.status == 400)
        #expect(answer.text.contains(wrong), "\(answer.text)")
        #expect(answer.text.contains("received sha256:"))
        let wrongSize = try upload("strict", dep, try preparedUpload(dep, narSize: 12345))
        #expect(wrongSize.status == 400)
        #expect(wrongSize.text.contains("12345"))
        #expect(try HTTP.request("GET", "\(server.url)/cache/strict/\(Self.hashPart(dep)).narinfo").status == 404)
        // Not a NAR at all.
        let garbage = temp.sub("garbage.zst")
        try ProcessRunner.run(["sh", "-c", "head -c 5000 /dev/urandom | zstd -q > \(garbage)"], check: true)
        let notNar = try upload("strict", dep, (garbage, try preparedUpload(dep).header))
        #expect(notNar.status == 400)
        #expect(try HTTP.request("GET", "\(server.url)/cache/strict/\(Self.hashPart(dep)).narinfo").status == 404)
        // And the honest upload then works.
        #expect(try upload("strict", dep, try preparedUpload(dep)).status == 200)
        #expect(try HTTP.request("GET", "\(server.url)/cache/strict/\(Self.hashPart(dep)).narinfo").status == 200)
        try assertConsistent("strict", paths: [dep])
    }

    /// Files of writes in flight, under every replica's temp directory.
    func temporaryBlobFiles() throws -> [String] {
        let temporary = server.dataDirectory + "/blobs/tmp"
        return try FileManager.default.subpathsOfDirectory(atPath: temporary).filter { path in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: temporary + "/" + path, isDirectory: &isDirectory)
                && !isDirectory.boolValue
        }
    }

    /// A deriver or CA declared with a second line must never reach a narinfo: the upload is refused
    /// (CacheService validates every declared field as Nix's narinfo parser would).
    @Test(arguments: [
        ("deriver", "5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-x.drv\nReferences: 9df65igwjmf2wbw0gbrrgair6piqjgmi-glibc-2.38"),
        ("ca", "fixed:r:sha256:0000\nReferences: 9df65igwjmf2wbw0gbrrgair6piqjgmi-glibc-2.38"),
    ])
    func declaredFieldCarryingASecondLineIsNeverServed(field: String, value: String) throws {
        _ = try admin.createCache("injected")
        let dep = try NixFixtures.buildClosure(in: temp.path)[2]
        let answer = try upload("injected", dep, try preparedUpload(dep, extra: [field: value]))
        let narInfo = try HTTP.request("GET", "\(server.url)/cache/injected/\(Self.hashPart(dep)).narinfo")
        #expect(!narInfo.text.contains("glibc"), "served an injected line: \(narInfo.text)")
        #expect(answer.status == 400, "\(answer.text)")
        #expect(narInfo.status == 404)
    }

    @Test func truncatedUploadLeavesNothingVisible() throws {
        _ = try admin.createCache("cut")
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 4_000_000)
        let dep = closure[2]
        let prepared = try preparedUpload(dep)
        let truncated = prepared.body + ".cut"
        let full = try Data(contentsOf: URL(fileURLWithPath: prepared.body))
        try full.prefix(full.count / 2).write(to: URL(fileURLWithPath: truncated))
        let answer = try upload("cut", dep, (truncated, prepared.header))
        #expect(answer.status == 400)
        #expect(try HTTP.request("GET", "\(server.url)/cache/cut/\(Self.hashPart(dep)).narinfo").status == 404)
        let tmpEntries = try temporaryBlobFiles()
        #expect(tmpEntries.isEmpty, "temporary blobs left behind: \(tmpEntries)")
    }

    @Test func pushKilledMidwayThenCompletes() throws {
        let key = try admin.createCache("interrupted")
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 8_000_000)
        let dep = closure[2]
        let prepared = try preparedUpload(dep)
        // A slow upload, killed while the server is still receiving it.
        let curl = try startSlowUpload("interrupted", dep, prepared, rate: "200K")
        usleep(700_000)
        kill(curl.processIdentifier, SIGKILL)
        curl.waitUntilExit()
        usleep(200_000)
        #expect(try HTTP.request("GET", "\(server.url)/cache/interrupted/\(Self.hashPart(dep)).narinfo").status == 404)
        try admin.run(["push", "interrupted", closure[0]])
        try assertConsistent("interrupted", paths: closure)
        try NixFixtures.delete(closure)
        let result = try ProcessRunner.run(
            [
                "nix-store", "-r", closure[0], "--max-jobs", "0", "--option", "substituters",
                "\(server.url)/cache/interrupted", "--option", "trusted-public-keys", key,
            ], environment: TestEnvironment.nixEnvironment)
        #expect(result.status == 0, "\(result.stderrString)")
    }

    @Test func serverKilledDuringPushRestartsConsistent() throws {
        _ = try admin.createCache("crashy")
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 8_000_000)
        let dep = closure[2]
        let prepared = try preparedUpload(dep)
        // The server dies (SIGKILL) while a slow upload of the large path is in flight.
        let curl = try startSlowUpload("crashy", dep, prepared, rate: "100K")
        usleep(700_000)
        server.kill()
        curl.waitUntilExit()
        try server.start()
        #expect(try HTTP.request("GET", "\(server.url)/cache/crashy/\(Self.hashPart(dep)).narinfo").status == 404)
        let leftovers = try temporaryBlobFiles()
        #expect(leftovers.isEmpty, "restart did not clear interrupted uploads: \(leftovers)")
        try assertConsistent("crashy", paths: closure)
        try admin.run(["push", "crashy", closure[0]])
        for path in closure {
            #expect(try HTTP.request("GET", "\(server.url)/cache/crashy/\(Self.hashPart(path)).narinfo").status == 200)
        }
        try assertConsistent("crashy", paths: closure)
    }

    @Test func narDownloadsSupportRanges() throws {
        _ = try admin.createCache("ranges")
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 300_000)
        try admin.run(["push", "ranges", closure[0]])
        let info = try NarInfo(
            parsing: try HTTP.request("GET", "\(server.url)/cache/ranges/\(Self.hashPart(closure[2])).narinfo").text)
        let whole = try HTTP.request("GET", "\(server.url)/cache/ranges/\(info.url)")
        #expect(whole.status == 200)
        #expect(UInt64(whole.body.count) == info.fileSize)
        let part = try HTTP.request("GET", "\(server.url)/cache/ranges/\(info.url)", headers: ["Range: bytes=10-99"])
        #expect(part.status == 206)
        #expect(part.body == whole.body.subdata(in: 10..<100))
        let tail = try HTTP.request("GET", "\(server.url)/cache/ranges/\(info.url)", headers: ["Range: bytes=-16"])
        #expect(tail.body == whole.body.suffix(16))
        let head = try HTTP.request("HEAD", "\(server.url)/cache/ranges/\(Self.hashPart(closure[2])).narinfo")
        #expect(head.status == 200)
        #expect(try HTTP.request("GET", "\(server.url)/cache/ranges/nar/doesnotexist.nar.zst").status == 404)
    }
}
