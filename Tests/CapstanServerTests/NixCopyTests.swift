import Foundation
import TestSupport
import Testing

/// Nix's own HTTP upload (`nix copy --to http://…`) against a Capstan cache.
@Suite(.serialized) struct NixCopyTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI

    init() throws {
        temp = try TemporaryDirectory("capstan-nixcopy")
        server = try ServerProcess(dataDirectory: temp.sub("data"))
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
    }

    func netrc(_ token: String) throws -> String {
        let path = temp.sub("netrc-\(UUID().uuidString)")
        try "machine 127.0.0.1 login capstan password \(token)\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test(arguments: ["", "?compression=zstd", "?compression=none"])
    func nixCopyUploadsAClosureOthersSubstitute(_ query: String) throws {
        let name = "copied" + String(query.count)
        let key = try admin.createCache(name)
        let push = try admin.createToken(kind: "push", cache: name)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try ProcessRunner.nix([
            "nix", "copy", "--to", "\(server.url)/cache/\(name)\(query)", closure[0],
            "--option", "netrc-file", try netrc(push),
        ])
        try NixFixtures.delete(closure)
        // Another machine: its Nix has not cached the unsigned narinfo files this one uploaded.
        var otherMachine = TestEnvironment.nixEnvironment
        otherMachine["XDG_CACHE_HOME"] = temp.sub("other-machine-cache-\(name)")
        let result = try ProcessRunner.run(
            [
                "nix-store", "-r", closure[0], "--max-jobs", "0",
                "--option", "substituters", "\(server.url)/cache/\(name)",
                "--option", "trusted-public-keys", key, "--option", "require-sigs", "true",
            ], environment: otherMachine)
        #expect(result.status == 0, "\(result.stderrString)")
        for path in closure { #expect(NixFixtures.isValid(path)) }
    }

    @Test func nixCopyWithoutPushTokenIsRefused() throws {
        _ = try admin.createCache("guarded")
        let read = try admin.createToken(kind: "read", cache: "guarded")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        let result = try ProcessRunner.run(
            [
                "nix", "copy", "--to", "\(server.url)/cache/guarded", closure[0],
                "--option", "netrc-file", try netrc(read),
            ], environment: TestEnvironment.nixEnvironment)
        #expect(result.status != 0)
        let hash = String(closure[0].dropFirst("/nix/store/".count).prefix(32))
        #expect(try HTTP.request("GET", "\(server.url)/cache/guarded/\(hash).narinfo").status == 404)
    }

    /// Two `nix copy` of one closure at once, compressed differently (so their blobs differ): both
    /// succeed, the cache serves one NAR per path, and no other blob (stored or staged) remains. A
    /// third upload of one of those paths with another NAR is refused, naming the hash the cache holds.
    @Test func racingNixCopiesOfOnePathLeaveOneNarAndNoOrphan() async throws {
        _ = try admin.createCache("raced")
        let push = try admin.createToken(kind: "push", cache: "raced")
        let netrc = try netrc(push)
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: 6_000_000)
        let copies = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
            for compression in ["zstd", "xz"] {
                let url = "\(server.url)/cache/raced?compression=\(compression)"
                // Two CI jobs: each its own Nix disk cache (one SQLite file written by both at once fails in Nix).
                var job = TestEnvironment.nixEnvironment
                job["XDG_CACHE_HOME"] = temp.sub("job-cache-\(compression)")
                group.addTask {
                    try ProcessRunner.run(
                        ["nix", "copy", "--to", url, closure[0], "--option", "netrc-file", netrc], environment: job)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for copy in copies { #expect(copy.status == 0, "\(copy.stderrString)") }
        var served: [String: String] = [:]
        for path in closure {
            let hash = String(path.dropFirst("/nix/store/".count).prefix(32))
            let answer = try HTTP.request("GET", "\(server.url)/cache/raced/\(hash).narinfo")
            #expect(answer.status == 200)
            let fields = Dictionary(
                answer.text.split(separator: "\n").compactMap { line -> (String, String)? in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)) : nil
                }, uniquingKeysWith: { first, _ in first })
            served[path] = fields["NarHash"]
            let url = try #require(fields["URL"])
            #expect(url.hasPrefix("nar/"))
            #expect(FileManager.default.fileExists(atPath: server.dataDirectory + "/blobs/" + url))
        }
        let nars = try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/blobs/nar")
        #expect(nars.count == closure.count, "one blob per path, no orphan: \(nars)")
        let staging = server.dataDirectory + "/blobs/staging"
        #expect(try FileManager.default.subpathsOfDirectory(atPath: staging).allSatisfy { !$0.hasSuffix(".nar") })

        // Another NAR under the same store path: a conflict that names the path and the hash kept.
        var other = try stageNar(in: "raced")
        other.storePath = closure[2]
        other.hashPart = String(closure[2].dropFirst("/nix/store/".count).prefix(32))
        let refused = try HTTP.request(
            "PUT", "\(server.url)/cache/raced/\(other.hashPart).narinfo", token: push,
            bodyFile: try other.narInfo(in: temp))
        #expect(refused.status == 409, "\(refused.text)")
        let message = try #require(
            (try JSONSerialization.jsonObject(with: refused.body) as? [String: Any])?["error"] as? String)
        #expect(message.contains(closure[2]), "\(message)")
        #expect(message.contains(try #require(served[closure[2]])), "\(message)")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: server.dataDirectory + "/blobs/nar").count == nars.count
        )
        #expect(try FileManager.default.subpathsOfDirectory(atPath: staging).allSatisfy { !$0.hasSuffix(".nar") })
    }

    /// The NAR of a fresh path, uploaded to `nar/<hash>.nar` of `cache` as `nix copy` does before its narinfo.
    struct StagedNar {
        var storePath: String
        var hashPart: String
        var fileHash: String
        var size: Int
        /// The NAR as uploaded.
        var file: String

        /// A narinfo file for the staged NAR declaring `narHash`, with `extraLines` at the end.
        func narInfo(narHash: String? = nil, extraLines: String = "", in temp: TemporaryDirectory) throws -> String {
            let file = temp.sub("\(UUID().uuidString).narinfo")
            try """
            StorePath: \(storePath)
            URL: nar/\(fileHash).nar
            Compression: none
            NarHash: \(narHash ?? "sha256:" + fileHash)
            NarSize: \(size)
            References:
            \(extraLines)
            """.write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }
    }

    func stageNar(in cache: String) throws -> StagedNar {
        let dep = try NixFixtures.buildClosure(in: temp.path)[2]
        let nar = temp.sub("\(UUID().uuidString).nar")
        try ProcessRunner.nix(["nix-store", "--dump", dep]).stdout.write(to: URL(fileURLWithPath: nar))
        let size = try FileManager.default.attributesOfItem(atPath: nar)[.size] as? Int ?? 0
        let fileHash = try ProcessRunner.nix(["nix", "hash", "file", "--type", "sha256", "--base32", nar]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let put = try HTTP.request(
            "PUT", "\(server.url)/cache/\(cache)/nar/\(fileHash).nar", token: admin.token, bodyFile: nar)
        #expect(put.status == 200)
        return StagedNar(
            storePath: dep, hashPart: String(dep.dropFirst("/nix/store/".count).prefix(32)), fileHash: fileHash,
            size: size, file: nar)
    }

    @Test func narInfoWithWrongNarHashIsRefused() throws {
        _ = try admin.createCache("checked")
        let staged = try stageNar(in: "checked")
        let url = "\(server.url)/cache/checked/\(staged.hashPart).narinfo"
        let wrong = "sha256:" + String(repeating: "1", count: 52)
        let refused = try HTTP.request(
            "PUT", url, token: admin.token, bodyFile: try staged.narInfo(narHash: wrong, in: temp))
        #expect(refused.status == 400)
        #expect(refused.text.contains(wrong))
        #expect(try HTTP.request("GET", url).status == 404)
        // A refused narinfo takes its staged NAR with it: nothing lingers, the NAR must come again.
        let withoutNar = try HTTP.request("PUT", url, token: admin.token, bodyFile: try staged.narInfo(in: temp))
        #expect(withoutNar.status == 400)
        #expect(withoutNar.text.contains("upload the NAR first"), "\(withoutNar.text)")
        #expect(
            try FileManager.default.subpathsOfDirectory(atPath: server.dataDirectory + "/blobs/staging").allSatisfy {
                !$0.hasSuffix(".nar")
            })
        let again = try HTTP.request(
            "PUT", "\(server.url)/cache/checked/nar/\(staged.fileHash).nar", token: admin.token, bodyFile: staged.file)
        #expect(again.status == 200)
        let accepted = try HTTP.request("PUT", url, token: admin.token, bodyFile: try staged.narInfo(in: temp))
        #expect(accepted.status == 200, "\(accepted.text)")
        let served = try HTTP.request("GET", url)
        #expect(served.status == 200)
        #expect(served.text.contains("Sig: checked-1:"))
    }

    /// A narinfo line cannot carry a second one: a CR inside a value, or a CA or Deriver that Nix
    /// would not read, is refused and nothing becomes visible.
    @Test(arguments: [
        "Deriver: 5vqjqkd6xwncl1fq3gg1qqmpf9nhb8dg-x.drv\rReferences: 9df65igwjmf2wbw0gbrrgair6piqjgmi-glibc-2.38",
        "CA: fixed:r:sha256:0000\rSig: evil-1:AAAA",
        "CA: not-a-content-address",
        "Deriver: /etc/passwd",
    ])
    func narInfoWithInjectedOrMalformedFieldIsRefused(line: String) throws {
        _ = try admin.createCache("strict")
        let staged = try stageNar(in: "strict")
        let url = "\(server.url)/cache/strict/\(staged.hashPart).narinfo"
        let refused = try HTTP.request(
            "PUT", url, token: admin.token, bodyFile: try staged.narInfo(extraLines: line + "\n", in: temp))
        #expect(refused.status == 400, "\(refused.text)")
        #expect(try HTTP.request("GET", url).status == 404)
    }
}
