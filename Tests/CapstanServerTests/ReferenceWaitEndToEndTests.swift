import Foundation
import TestSupport
import Testing

/// End to end, with the real server, CLI and `nix`: `capstan push` sends paths while their references
/// are still on their way, the server holds them until the references are stored, and an upload whose
/// client hangs up while it waits gives its reserved space back.
@Suite(.serialized) struct ReferenceWaitEndToEndTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI
    /// Room for one waiting upload of `bigDependent`'s NAR (700 kB of random bytes), not for two.
    static let pendingBound = 1_000_000

    init() throws {
        temp = try TemporaryDirectory("capstan-reference-wait")
        server = try ServerProcess(
            dataDirectory: temp.sub("data"),
            environment: ["CAPSTAN_MAX_PENDING_UPLOAD_BYTES": String(Self.pendingBound)])
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
    }

    /// Waits until the server's log has a line containing every one of `parts`.
    func waitForLog(_ parts: [String], timeout: Duration = .seconds(60)) throws {
        let deadline = ContinuousClock.now + timeout
        while !server.log.split(separator: "\n").contains(where: { line in parts.allSatisfy { line.contains($0) } }) {
            guard ContinuousClock.now < deadline else {
                throw TestFailure("no log line with \(parts) within \(timeout): \(server.log.suffix(3000))")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    @Test func pushSendsDependentsBeforeTheirReferencesAreStoredAndNixSubstitutesTheClosure() throws {
        let key = try admin.createCache("chain")
        // A large library at the bottom: the paths above it are sent while it is still on its way.
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 24 << 20)
        let push = try admin.run(["push", "chain", closure[0], "--json"])
        let summary = try JSONSerialization.jsonObject(with: push.stdout) as? [String: Any]
        #expect((summary?["uploaded"] as? [String])?.sorted() == closure.sorted())
        // A dependent's body was received and checked before its reference was in the cache.
        let log = server.log
        let waited = closure.dropLast().filter { path in
            log.split(separator: "\n").contains { $0.contains("upload waits for its references") && $0.contains(path) }
        }
        #expect(!waited.isEmpty, "no upload waited for its references: \(log.suffix(4000))")
        let substituted = try NixFixtures.substituteIntoEmptyStore(
            [closure[0]], substituter: "\(server.url)/cache/chain", key: key, in: temp)
        #expect(substituted.status == 0, "\(substituted.stderrString)")
    }

    /// Pushes a fresh closure (top → mid → dep, with a large dep) to a new cache of a server of its own
    /// started with `environment`; the server (stopped when released), the closure, and the summary.
    func pushChain(environment: [String: String]) throws -> (
        server: ServerProcess, closure: [String], uploaded: [String]
    ) {
        let own = try ServerProcess(dataDirectory: temp.sub("data-\(NixFixtures.nonce())"), environment: environment)
        let cli = CapstanCLI(url: own.url, token: try own.adminToken)
        _ = try cli.createCache("chain")
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 24 << 20)
        let push = try cli.run(["push", "chain", closure[0], "--json"])
        let summary = try JSONSerialization.jsonObject(with: push.stdout) as? [String: Any]
        return (own, closure, (summary?["uploaded"] as? [String]) ?? [])
    }

    /// The order in which the server logged the paths as stored.
    static func storedOrder(_ log: String, of paths: [String]) -> [String] {
        log.split(separator: "\n").filter { $0.contains("path stored") }.compactMap { line in
            paths.first { line.contains($0) }
        }
    }

    @Test func aServerThatDoesNotWaitGetsEachPathAfterItsReferences() throws {
        let (own, closure, uploaded) = try pushChain(environment: ["CAPSTAN_MAX_REFERENCE_WAIT_SECONDS": "0"])
        #expect(uploaded.sorted() == closure.sorted())
        #expect(!own.log.contains("upload waits for its references"))
        #expect(Self.storedOrder(own.log, of: closure) == closure.reversed())
    }

    @Test func pathsRefusedForWantOfRoomToWaitGoAgainOnceTheirReferencesAreStored() throws {
        // No room to wait at all: a path sent before its references is refused at once (424).
        let (own, closure, uploaded) = try pushChain(environment: ["CAPSTAN_MAX_PENDING_UPLOAD_BYTES": "1"])
        #expect(uploaded.sorted() == closure.sorted())
        #expect(own.log.contains("no room left under max_pending_upload_bytes"), "\(own.log.suffix(4000))")
        #expect(Self.storedOrder(own.log, of: closure) == closure.reversed())
    }

    @Test func aPathThatFailsNamesThePathsLeftUnsentAndTheirWaitsEnd() throws {
        _ = try admin.createCache("broken")
        let token = try admin.createToken(kind: "push", cache: "broken")
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 24 << 20)
        defer { try? NixFixtures.delete(closure) }
        // The store's copy of the library no longer matches its NarHash: the server refuses it.
        let payload = try FileHandle(forWritingTo: URL(fileURLWithPath: closure[2] + "/lib/payload"))
        try payload.seekToEnd()
        try payload.write(contentsOf: Data("tampered".utf8))
        try payload.close()
        let push = try admin.with(token: token).run(["push", "broken", closure[0]], check: false)
        #expect(push.status != 0)
        let error = push.stderrString
        #expect(error.contains("pushing \(closure[2])") && error.contains("NAR hash mismatch"), "\(error)")
        #expect(error.contains("not uploaded either, as they refer to it"), "\(error)")
        #expect(error.contains(closure[0]) && error.contains(closure[1]), "\(error)")
        // The uploads sent before it and waiting for it end as their client goes, storing nothing.
        for path in closure.prefix(2) where waits(of: path) > 0 {
            try waitForLog(["ended unstored", path], timeout: .seconds(30))
        }
        for path in closure {
            #expect(try HTTP.request("GET", "\(server.url)/cache/broken/\(Self.hashPart(path)).narinfo").status == 404)
        }
    }

    /// A reference and a 700 kB program that refers to it, built fresh.
    func bigDependent() throws -> (reference: String, program: String) {
        let nonce = NixFixtures.nonce()
        let expression = """
            let
              \(NixFixtures.mkBinding)
              ref = mk "capstan-ref" "mkdir -p $out; echo \(nonce) > $out/nonce";
            in mk "capstan-big" "mkdir -p $out; head -c 700000 /dev/urandom > $out/blob; echo ${ref} > $out/ref"
            """
        let file = temp.sub("big-\(nonce).nix")
        try expression.write(toFile: file, atomically: true, encoding: .utf8)
        let program = try ProcessRunner.nix(["nix-build", "--no-out-link", file]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let reference = try #require(try NixFixtures.closure(of: program).first { $0.hasSuffix("-capstan-ref") })
        return (reference, program)
    }

    /// curl uploading `path` (its NAR dumped to `nar`) to the cache, asking to wait for its references;
    /// it gives up after `maxTime` seconds. Its standard output is the answer's status.
    func upload(_ path: String, nar: String, cache: String, token: String, maxTime: Int) throws -> Process {
        let curl = Process()
        curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        curl.arguments =
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", String(maxTime), "-X", "PUT",
                "-H", "Authorization: Bearer \(token)", "--data-binary", "@\(nar)",
                "\(server.url)/api/v1/caches/\(cache)/paths/\(Self.hashPart(path))",
            ] + (try uploadHeaders(path)).flatMap { ["-H", $0] }
        curl.standardOutput = Pipe()
        try curl.run()
        return curl
    }

    static func hashPart(_ path: String) -> String { String(path.dropFirst("/nix/store/".count).prefix(32)) }

    /// How many log lines of the server say that an upload of `path` waits.
    func waits(of path: String) -> Int {
        server.log.split(separator: "\n").filter { $0.contains("upload waits for its references") && $0.contains(path) }
            .count
    }

    @Test func anUploadWhoseClientHangsUpWhileWaitingGivesItsSpaceBack() throws {
        _ = try admin.createCache("hangup")
        let token = try admin.createToken(kind: "push", cache: "hangup")
        let (reference, program) = try bigDependent()
        let nar = temp.sub("program.nar")
        let dump = try ProcessRunner.nix(["nix-store", "--dump", program]).stdout
        try dump.write(to: URL(fileURLWithPath: nar))

        // The first waits, holding most of the pending bound, until its client gives up after 4 s.
        let first = try upload(program, nar: nar, cache: "hangup", token: token, maxTime: 4)
        defer { if first.isRunning { first.terminate() } }
        try waitForLog(["upload waits for its references", program])
        // Meanwhile there is no room for a second one to wait: refused at once, naming the reference.
        let second = try HTTP.request(
            "PUT", "\(server.url)/api/v1/caches/hangup/paths/\(Self.hashPart(program))", token: token,
            headers: try uploadHeaders(program), bodyFile: nar)
        let refusal = second.text.replacingOccurrences(of: "\\/", with: "/")
        #expect(second.status == 424, "\(refusal)")
        #expect(refusal.contains("max_pending_upload_bytes") && refusal.contains(reference), "\(refusal)")
        first.waitUntilExit()
        try waitForLog(["ended unstored", program, "went away"], timeout: .seconds(30))

        // The space is free again: a third upload waits, and is stored once its reference is pushed.
        let narInfo = "\(server.url)/cache/hangup/\(Self.hashPart(program)).narinfo"
        let waitsBefore = waits(of: program)
        let third = try upload(program, nar: nar, cache: "hangup", token: token, maxTime: 120)
        defer { if third.isRunning { third.terminate() } }
        let deadline = ContinuousClock.now + .seconds(60)
        while waits(of: program) == waitsBefore {
            try #require(third.isRunning && ContinuousClock.now < deadline, "the third upload did not wait")
            Thread.sleep(forTimeInterval: 0.05)
        }
        #expect(try HTTP.request("GET", narInfo, token: token).status == 404)
        try admin.with(token: token).run(["push", "hangup", reference])
        third.waitUntilExit()
        let answer = (third.standardOutput as? Pipe)?.fileHandleForReading.readDataToEndOfFile() ?? Data()
        #expect(String(decoding: answer, as: UTF8.self) == "200")
        #expect(try HTTP.request("GET", narInfo, token: token).status == 200)
    }

    /// The headers of an upload of `path` that asks to wait for its references.
    func uploadHeaders(_ path: String) throws -> [String] {
        let infoJSON = try ProcessRunner.nix(["nix", "path-info", "--json", path]).stdout
        let entry = try #require((try JSONSerialization.jsonObject(with: infoJSON) as? [[String: Any]])?.first)
        let info: [String: Any] = [
            "storePath": path, "narHash": try #require(entry["narHash"] as? String),
            "narSize": try #require(entry["narSize"] as? Int), "references": entry["references"] ?? [], "sigs": [],
        ]
        let header = try JSONSerialization.data(withJSONObject: info).base64EncodedString()
        return [
            "X-Capstan-Path-Info: \(header)", "X-Capstan-Await-References: 600",
            "Content-Type: application/x-nix-nar",
        ]
    }
}
