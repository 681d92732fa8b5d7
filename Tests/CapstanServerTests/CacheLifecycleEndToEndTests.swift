import Foundation
import Synchronization
import TestSupport
import Testing

/// Garbage collection against the real server under stress: racing pushes that share blobs, and
/// a server killed in the middle of a collection. The invariant checked throughout: a narinfo the
/// cache serves always has its NAR.
@Suite(.serialized) struct CacheLifecycleEndToEndTests {
    /// Reads every path's narinfo and NAR as Nix would; a NAR missing while its narinfo is still
    /// served (before and after the NAR request) is a violation.
    static func violations(server: ServerProcess, cache: String, hashes: [String]) throws -> [String] {
        var found: [String] = []
        for hash in hashes {
            let narInfo = try HTTP.request("GET", "\(server.url)/cache/\(cache)/\(hash).narinfo")
            guard narInfo.status == 200,
                let url = narInfo.text.split(separator: "\n").first(where: { $0.hasPrefix("URL: ") })?.dropFirst(5)
            else { continue }
            let nar = try ProcessRunner.run([
                "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "\(server.url)/cache/\(cache)/\(url)",
            ]).stdoutString
            guard nar != "200" else { continue }
            let again = try HTTP.request("GET", "\(server.url)/cache/\(cache)/\(hash).narinfo")
            if again.status == 200 && again.text.contains("URL: \(url)") {
                found.append("\(cache)/\(hash).narinfo is served but its \(url) answers \(nar)")
            }
        }
        return found
    }

    static func hashes(_ paths: [String]) -> [String] {
        paths.map { String($0.dropFirst("/nix/store/".count).prefix(32)) }
    }

    @Test func aCollectionRacingPushesThatShareBlobsNeverShowsANarinfoWithoutItsNar() throws {
        let temp = try TemporaryDirectory("capstan-gc-race")
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), environment: ["CAPSTAN_GC_BLOB_GRACE": "1s"])
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("churn")
        let steadyKey = try admin.createCache("steady")
        try admin.run(["cache", "configure", "churn", "--retention", "0s"])
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 200_000)
        let hashes = Self.hashes(closure)
        let problems = Mutex<[String]>([])
        let blobsDeleted = Mutex(0)
        let racing = Mutex(true)
        // Nix's view of `steady`, whose uploads race the deletions, all along. (Reading `churn` too
        // would count as using its paths, which a retention of 0 s would then keep.)
        let reader = DispatchGroup()
        DispatchQueue.global().async(group: reader) {
            while racing.withLock({ $0 }) {
                do {
                    let found = try Self.violations(server: server, cache: "steady", hashes: hashes)
                    problems.withLock { $0 += found }
                } catch {
                    problems.withLock { $0.append("reader: \(error)") }
                }
            }
        }
        @Sendable func collect() throws {
            let report = try admin.run(["cache", "gc", "churn", "--json"]).stdout
            let object = try JSONSerialization.jsonObject(with: report) as? [String: Any]
            blobsDeleted.withLock { $0 += object?["blobsDeleted"] as? Int ?? 0 }
        }
        for round in 0..<8 {
            // Both caches hold the closure; `steady` drops it, `churn` is collected: no cache uses its
            // blobs any more, and after the grace period they are due for deletion.
            try admin.run(["push", "churn", closure[0]])
            try admin.run(["push", "steady", closure[0]])
            try admin.run(["cache", "rm", "steady", closure[2], "--force"])
            try collect()
            Thread.sleep(forTimeInterval: 1.2)
            if round % 2 == 0 {
                try collect()
                continue
            }
            // The same NARs pushed into `steady` while the collection deletes them: the upload dedups onto
            // blobs being deleted.
            let race = DispatchGroup()
            DispatchQueue.global().async(group: race) {
                do { try admin.run(["push", "steady", closure[0]]) } catch {
                    problems.withLock { $0.append("steady: \(error)") }
                }
            }
            DispatchQueue.global().async(group: race) {
                do { try collect() } catch { problems.withLock { $0.append("churn: \(error)") } }
            }
            race.wait()
        }
        racing.withLock { $0 = false }
        reader.wait()
        #expect(problems.withLock { $0 } == [])
        #expect(blobsDeleted.withLock { $0 } >= 12, "every other round deletes the closure's blobs")
        // Afterwards: every remaining narinfo of either cache has its NAR, and the closure pushed once
        // more substitutes into an empty store.
        for cache in ["churn", "steady"] {
            let verify = try admin.run(["cache", "verify", cache, "--json"], check: false)
            #expect(verify.status == 0, "\(cache): \(verify.stdoutString)\(verify.stderrString)")
        }
        try admin.run(["push", "steady", closure[0]])
        let result = try NixFixtures.substituteIntoEmptyStore(
            [closure[0]], substituter: "\(server.url)/cache/steady", key: steadyKey, in: temp)
        #expect(result.status == 0, "\(result.stderrString)")
    }

    @Test func theServerCollectsEveryCacheOnItsOwnEachInterval() throws {
        let temp = try TemporaryDirectory("capstan-gc-periodic")
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"),
            environment: ["CAPSTAN_GC_INTERVAL": "1s", "CAPSTAN_GC_BLOB_GRACE": "1s"])
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("auto")
        _ = try admin.createCache("forever")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["push", "auto", closure[0]])
        let kept = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["push", "forever", kept[0]])
        try admin.run(["cache", "configure", "auto", "--retention", "0s"])
        let hash = Self.hashes(closure)[0]
        #expect(
            try eventually(timeout: 20) {
                try HTTP.request("GET", "\(server.url)/cache/auto/\(hash).narinfo").status == 404
            })
        // Then its blobs, once their grace period is over; the other cache keeps everything.
        #expect(
            try eventually(timeout: 20) {
                try FileManager.default.contentsOfDirectory(atPath: temp.sub("data") + "/blobs/nar").count == 3
            })
        let info = try JSONSerialization.jsonObject(with: try admin.run(["cache", "info", "auto", "--json"]).stdout)
        #expect((info as? [String: Any])?["pathCount"] as? Int == 0)
        #expect(((info as? [String: Any])?["retention"] as? [String: Any])?["lastGC"] != nil)
        let verify = try admin.run(["cache", "verify", "forever", "--json"], check: false)
        #expect(verify.status == 0, "\(verify.stdoutString)")
    }

    @Test func killingTheServerDuringACollectionLeavesNoNarinfoWithoutItsNar() throws {
        let temp = try TemporaryDirectory("capstan-gc-kill")
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), environment: ["CAPSTAN_GC_BLOB_GRACE": "300ms"])
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("big")
        // Many small paths, so that a collection takes long enough to be interrupted.
        let files = temp.sub("files")
        try FileManager.default.createDirectory(atPath: files, withIntermediateDirectories: true)
        let nonce = UUID().uuidString
        let names = (0..<1500).map { "capstan-gc-kill-\($0)" }
        for name in names {
            try "\(name) \(nonce)\n".write(toFile: files + "/" + name, atomically: false, encoding: .utf8)
        }
        let paths = try ProcessRunner.nix(["nix-store", "--add"] + names.map { files + "/" + $0 }).stdoutString
            .split(separator: "\n").map(String.init)
        #expect(paths.count == names.count)
        try admin.run(["push", "big", "--stdin", "--jobs", "8"], input: Data(paths.joined(separator: "\n").utf8))
        try admin.run(["cache", "configure", "big", "--retention", "0s"])
        var remaining: [Int] = []
        for delay in [0.05, 0.2, 0.05, 0.4, 0.1, 0.8] {
            let gc = Process()
            gc.executableURL = URL(fileURLWithPath: TestEnvironment.capstanBinary)
            gc.arguments = ["cache", "gc", "big", "--url", server.url, "--token", try server.adminToken]
            gc.standardOutput = FileHandle.nullDevice
            gc.standardError = FileHandle.nullDevice
            try gc.run()
            Thread.sleep(forTimeInterval: delay)
            server.kill()
            gc.waitUntilExit()
            try server.start()
            let verify = try admin.run(["cache", "verify", "big", "--json"], check: false)
            #expect(verify.status == 0, "after a kill \(delay)s into a collection: \(verify.stdoutString)")
            let report = try JSONSerialization.jsonObject(with: verify.stdout) as? [String: Any]
            remaining.append(report?["checkedPaths"] as? Int ?? -1)
        }
        // Collections run to their end finish the job: no path, and after the grace period no blob.
        try admin.run(["cache", "gc", "big"])
        Thread.sleep(forTimeInterval: 0.5)
        try admin.run(["cache", "gc", "big"])
        let info = try JSONSerialization.jsonObject(with: try admin.run(["cache", "info", "big", "--json"]).stdout)
        #expect((info as? [String: Any])?["pathCount"] as? Int == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: temp.sub("data") + "/blobs/nar")
        #expect(left.isEmpty, "\(left.count) blobs left; paths after each kill: \(remaining)")
        let first = try #require(Self.hashes(paths).first)
        #expect(try HTTP.request("GET", "\(server.url)/cache/big/\(first).narinfo").status == 404)
    }
}
