import Foundation
import TestSupport
import Testing

/// The cachix push protocol end to end: the conformance client pushes a closure in parts, and
/// the real `nix-store -r` substitutes it, path-style and through Host routing.
@Suite(.serialized) struct CachixCacheTests {
    @Test func pushedClosureIsSubstitutedThroughHostRouting() throws {
        let fixture = try CachixFixture()
        let push = ["CACHIX_AUTH_TOKEN": try fixture.admin.createToken(kind: "push", cache: "fleet")]
        let closure = try NixFixtures.buildClosure(in: fixture.temp.path, payloadBytes: 300_000)
        let top = closure[0]
        #expect(fixture.cacheKey.hasPrefix("fleet.localhost-1:"), "the key cachix agents trust: \(fixture.cacheKey)")

        let run = try fixture.client(["push", "fleet", top, "--part-size", "65536"], environment: push)
        #expect(run.status == 0, "\(run.output)\n\(fixture.server.log.suffix(3000))")
        let cache = try #require(run.events("cache").first)
        #expect(cache["uri"] as? String == fixture.hostedCacheURL)
        #expect(cache["preferredCompressionMethod"] as? String == "ZSTD")
        #expect(cache["permission"] as? String == "Write")
        #expect(cache["publicSigningKeys"] as? [String] == [String(fixture.cacheKey.split(separator: ":")[1])])
        let pushed = run.events("pushed")
        #expect(Set(pushed.compactMap { $0["path"] as? String }) == Set(closure))
        #expect(pushed.contains { ($0["parts"] as? Int ?? 0) > 1 }, "the large path went up in several parts")

        for path in closure {
            let hash = String(path.split(separator: "/").last!.prefix(32))
            let head = try HTTP.request("HEAD", "\(fixture.server.url)/api/v1/cache/fleet/\(hash).narinfo")
            #expect(head.status == 200)
        }
        let again = try fixture.client(["push", "fleet", top], environment: push)
        #expect(again.status == 0)
        #expect((again.events("missing").first?["hashes"] as? [Any])?.isEmpty == true)
        #expect(again.events("pushed").isEmpty)

        let info = try HTTP.request("GET", "\(fixture.hostedCacheURL)/nix-cache-info")
        #expect(info.status == 200 && info.text.contains("StoreDir: /nix/store"), "\(info.text)")
        // Without a token a name that is no public cache is answered alike, private cache or none.
        let unknownHost = try HTTP.request("GET", "http://nothing.localhost:\(fixture.server.port)/nix-cache-info")
        #expect(unknownHost.status == 401)
        #expect(unknownHost.text.contains("'nothing' is not a public cache"), "\(unknownHost.text)")

        for substituter in [fixture.hostedCacheURL, "\(fixture.server.url)/cache/fleet"] {
            try NixFixtures.delete(closure)
            try ProcessRunner.nix([
                "nix-store", "-r", top, "--option", "substituters", substituter, "--option", "trusted-public-keys",
                fixture.cacheKey,
            ])
            for path in closure { #expect(NixFixtures.isValid(path), "\(path) from \(substituter)") }
        }
    }

    @Test func badSignatureOrWrongHashLeavesNothingVisible() throws {
        let fixture = try CachixFixture()
        let push = ["CACHIX_AUTH_TOKEN": try fixture.admin.createToken(kind: "push", cache: "fleet")]
        let path = try fixture.storePath("signed")
        let hash = String(path.split(separator: "/").last!.prefix(32))
        let forged = Data(repeating: 7, count: 64).base64EncodedString()
        let run = try fixture.client(["push", "fleet", path, "--signature", forged], environment: push)
        #expect(run.status == 2, "\(run.output)")
        #expect(run.output.contains("signature"), "\(run.output)")
        #expect(try HTTP.request("HEAD", "\(fixture.server.url)/api/v1/cache/fleet/\(hash).narinfo").status == 404)

        // A read token may look but not push.
        let read = ["CACHIX_AUTH_TOKEN": try fixture.admin.createToken(kind: "read", cache: "fleet")]
        let refused = try fixture.client(["push", "fleet", path], environment: read)
        #expect(refused.status == 2, "\(refused.output)")
        #expect(try HTTP.request("HEAD", "\(fixture.hostedCacheURL)/\(hash).narinfo").status == 404)
    }
}
