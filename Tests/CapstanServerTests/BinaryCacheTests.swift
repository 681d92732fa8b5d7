import Foundation
import Testing
import TestSupport

/// End to end: the real `capstan` server and CLI, the real `nix` substituting from them.
@Suite(.serialized) struct BinaryCacheTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI

    init() throws {
        temp = try TemporaryDirectory("capstan-cache")
        server = try ServerProcess(dataDirectory: temp.sub("data"))
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
    }

    func substitute(_ path: String, cache: String, key: String, netrc: String? = nil) throws -> ProcessResult {
        var args = [
            "nix-store", "-r", path, "--max-jobs", "0",
            "--option", "substituters", "\(server.url)/cache/\(cache)",
            "--option", "trusted-public-keys", key,
            "--option", "require-sigs", "true",
            "--option", "narinfo-cache-negative-ttl", "0",
        ]
        if let netrc { args += ["--option", "netrc-file", netrc] }
        return try ProcessRunner.run(args, environment: TestEnvironment.nixEnvironment)
    }

    @Test func pushedClosureIsSubstitutedByNix() throws {
        let key = try admin.createCache("public-one")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        let pushToken = try admin.createToken(kind: "push", cache: "public-one")
        let push = try admin.with(token: pushToken).run(["push", "public-one", closure[0], "--json"])
        let summary = try JSONSerialization.jsonObject(with: push.stdout) as? [String: Any]
        #expect((summary?["uploaded"] as? [Any])?.count == 3)
        try NixFixtures.delete(closure)
        let result = try substitute(closure[0], cache: "public-one", key: key)
        #expect(result.status == 0, "\(result.stderrString)")
        for path in closure { #expect(NixFixtures.isValid(path)) }
        let nonce = try String(contentsOfFile: closure[0] + "/nonce", encoding: .utf8)
        #expect(!nonce.isEmpty)

        // A second push finds everything present.
        let again = try admin.with(token: pushToken).run(["push", "public-one", closure[0], "--json"])
        let second = try JSONSerialization.jsonObject(with: again.stdout) as? [String: Any]
        #expect((second?["uploaded"] as? [Any])?.count == 0)
        #expect(second?["alreadyPresent"] as? Int == 3)
    }

    @Test func privateCacheNeedsTokenAndTrustedKey() throws {
        let key = try admin.createCache("private-one", public: false)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["push", "private-one", closure[0]])
        try NixFixtures.delete(closure)

        // Without a token Nix cannot see the cache.
        let anonymous = try substitute(closure[0], cache: "private-one", key: key)
        #expect(anonymous.status != 0)
        #expect(!NixFixtures.isValid(closure[0]))

        // With a key that is not the cache's, Nix refuses the paths.
        let readToken = try admin.createToken(kind: "read", cache: "private-one")
        let netrc = temp.sub("netrc")
        try "machine 127.0.0.1 login capstan password \(readToken)\n".write(toFile: netrc, atomically: true, encoding: .utf8)
        let otherKey = try admin.createCache("unrelated")
        let untrusted = try substitute(closure[0], cache: "private-one", key: otherKey, netrc: netrc)
        #expect(untrusted.status != 0)
        #expect(!NixFixtures.isValid(closure[0]))

        // With the read token in a netrc and the right key, it substitutes.
        let good = try substitute(closure[0], cache: "private-one", key: key, netrc: netrc)
        #expect(good.status == 0, "\(good.stderrString)")
        #expect(NixFixtures.isValid(closure[0]))
    }

    @Test func tokensAreScopedToTheirCache() throws {
        _ = try admin.createCache("cache-a", public: false)
        _ = try admin.createCache("cache-b", public: false)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        let pushA = try admin.createToken(kind: "push", cache: "cache-a")
        let readB = try admin.createToken(kind: "read", cache: "cache-b")
        try admin.run(["push", "cache-b", closure[0]])
        let hash = String(closure[0].dropFirst("/nix/store/".count).prefix(32))

        // A push token of A can neither read B nor write to it.
        #expect(try HTTP.request("GET", "\(server.url)/cache/cache-b/\(hash).narinfo", token: pushA).status == 403)
        let pushToB = try admin.with(token: pushA).run(["push", "cache-b", closure[0]], check: false)
        #expect(pushToB.status != 0)
        #expect(pushToB.stderrString.contains("may not write to cache 'cache-b'"))
        // A read token cannot push, even to its own cache.
        let readPush = try admin.with(token: readB).run(["push", "cache-b", closure[0]], check: false)
        #expect(readPush.status != 0)
        #expect(try HTTP.request("GET", "\(server.url)/cache/cache-b/\(hash).narinfo", token: readB).status == 200)
        // Anonymous and bogus tokens get 401.
        #expect(try HTTP.request("GET", "\(server.url)/cache/cache-b/\(hash).narinfo").status == 401)
        #expect(try HTTP.request("GET", "\(server.url)/cache/cache-b/\(hash).narinfo", token: "capad_bogus").status == 401)
    }

    @Test func revokedTokenIsRefused() throws {
        _ = try admin.createCache("revocable")
        let created = try admin.run(["token", "create", "--kind", "push", "--cache", "revocable", "--json"])
        let object = try JSONSerialization.jsonObject(with: created.stdout) as? [String: Any]
        let token = try #require(object?["token"] as? String)
        let id = try #require((object?["info"] as? [String: Any])?["id"] as? String)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["token", "revoke", id])
        let refused = try admin.with(token: token).run(["push", "revocable", closure[0]], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("revoked"))
        let list = try admin.run(["token", "list"]).stdoutString
        #expect(list.contains(id) && list.contains("revoked"))
    }

    @Test func cacheInfoAndNixCacheInfo() throws {
        let key = try admin.createCache("info-cache")
        let info = try admin.run(["cache", "info", "info-cache", "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: info) as? [String: Any]
        #expect(object?["publicKey"] as? String == key)
        #expect(key.hasPrefix("info-cache-1:"))
        let cacheInfo = try HTTP.request("GET", "\(server.url)/cache/info-cache/nix-cache-info")
        #expect(cacheInfo.status == 200)
        #expect(cacheInfo.text.contains("StoreDir: /nix/store"))
        #expect(cacheInfo.text.contains("WantMassQuery: 1"))
        let duplicate = try admin.run(["cache", "create", "info-cache"], check: false)
        #expect(duplicate.status != 0)
        #expect(duplicate.stderrString.contains("already exists"))
        let badName = try admin.run(["cache", "create", "Bad_Name"], check: false)
        #expect(badName.stderrString.contains("not valid"))
    }
}
