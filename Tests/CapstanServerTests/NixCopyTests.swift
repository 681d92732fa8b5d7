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

    @Test func narInfoWithWrongNarHashIsRefused() throws {
        _ = try admin.createCache("checked")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        let dep = closure[2]
        let hash = String(dep.dropFirst("/nix/store/".count).prefix(32))
        let nar = temp.sub("dep.nar")
        try ProcessRunner.nix(["nix-store", "--dump", dep]).stdout.write(to: URL(fileURLWithPath: nar))
        let size = try FileManager.default.attributesOfItem(atPath: nar)[.size] as? Int ?? 0
        let realHash = try ProcessRunner.nix(["nix", "hash", "file", "--type", "sha256", "--base32", nar]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let put = try HTTP.request(
            "PUT", "\(server.url)/cache/checked/nar/\(realHash).nar", token: admin.token, bodyFile: nar)
        #expect(put.status == 200)
        let wrong = "sha256:" + String(repeating: "1", count: 52)
        func narInfo(_ narHash: String) throws -> String {
            let file = temp.sub("\(UUID().uuidString).narinfo")
            try """
            StorePath: \(dep)
            URL: nar/\(realHash).nar
            Compression: none
            NarHash: \(narHash)
            NarSize: \(size)
            References:

            """.write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }
        let refused = try HTTP.request(
            "PUT", "\(server.url)/cache/checked/\(hash).narinfo", token: admin.token, bodyFile: try narInfo(wrong))
        #expect(refused.status == 400)
        #expect(refused.text.contains(wrong))
        #expect(try HTTP.request("GET", "\(server.url)/cache/checked/\(hash).narinfo").status == 404)
        // A refused narinfo takes its staged NAR with it: nothing lingers, the NAR must come again.
        let withoutNar = try HTTP.request(
            "PUT", "\(server.url)/cache/checked/\(hash).narinfo", token: admin.token,
            bodyFile: try narInfo("sha256:" + realHash))
        #expect(withoutNar.status == 400)
        #expect(withoutNar.text.contains("upload the NAR first"), "\(withoutNar.text)")
        #expect(
            try FileManager.default.subpathsOfDirectory(atPath: server.dataDirectory + "/blobs/staging").allSatisfy {
                !$0.hasSuffix(".nar")
            })
        #expect(
            try HTTP.request(
                "PUT", "\(server.url)/cache/checked/nar/\(realHash).nar", token: admin.token, bodyFile: nar
            ).status == 200)
        let accepted = try HTTP.request(
            "PUT", "\(server.url)/cache/checked/\(hash).narinfo", token: admin.token,
            bodyFile: try narInfo("sha256:" + realHash))
        #expect(accepted.status == 200, "\(accepted.text)")
        let served = try HTTP.request("GET", "\(server.url)/cache/checked/\(hash).narinfo")
        #expect(served.status == 200)
        #expect(served.text.contains("Sig: checked-1:"))
    }
}
