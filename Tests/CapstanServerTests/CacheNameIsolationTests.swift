import Foundation
import TestSupport
import Testing

/// A workspace must not learn, by any route that takes a cache name, that another workspace has a
/// private cache of that name: reading it answers as for a name nobody uses, and creating one of its
/// own succeeds. Public names are public and stay unique among public caches.
@Suite(.serialized) struct CacheNameIsolationTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let owner: CapstanCLI
    let stranger: CapstanCLI

    init() throws {
        temp = try TemporaryDirectory("capstan-cache-names")
        server = try ServerProcess(dataDirectory: temp.sub("data"))
        owner = CapstanCLI(url: server.url, token: try server.adminToken)
        let token = try owner.run(["workspace", "create", "team-b"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        stranger = owner.with(token: token)
    }

    /// What a request for `name` answers, with the name taken out of the body so answers compare.
    func probe(_ method: String, _ route: String, name: String, token: String?, body: String? = nil) throws
        -> (status: Int, body: String)
    {
        var bodyFile: String?
        if let body {
            bodyFile = temp.sub("body-\(UUID().uuidString)")
            try body.write(toFile: bodyFile!, atomically: true, encoding: .utf8)
        }
        let answer = try HTTP.request(
            method, server.url + route.replacingOccurrences(of: "NAME", with: name), token: token,
            headers: body == nil ? [] : ["Content-Type: application/json"], bodyFile: bodyFile)
        // HEAD shows headers: all but the date must match.
        let text = answer.text.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.lowercased().hasPrefix("date:") }.joined(separator: "\n")
        return (answer.status, text.replacingOccurrences(of: name, with: "NAME"))
    }

    @Test func anotherWorkspacesPrivateCacheNameRevealsNothingAndIsFreeToUse() throws {
        let ownerKey = try owner.createCache("secret", public: false)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try owner.run(["push", "secret", closure[0]])
        let hash = String(closure[0].dropFirst("/nix/store/".count).prefix(32))
        let strangerToken = try #require(stranger.token)

        // Every route that takes a name answers the stranger as if the name were unused.
        let routes = [
            ("GET", "/cache/NAME/nix-cache-info"), ("GET", "/cache/NAME/\(hash).narinfo"),
            ("HEAD", "/cache/NAME/\(hash).narinfo"), ("GET", "/api/v1/caches/NAME"), ("GET", "/api/v1/cache/NAME"),
            ("POST", "/api/v1/caches/NAME/missing"), ("PATCH", "/api/v1/caches/NAME"),
        ]
        for (method, route) in routes {
            let body =
                method == "GET" || method == "HEAD" ? nil : (route.hasSuffix("missing") ? #"{"hashes":[]}"# : "{}")
            let hidden = try probe(method, route, name: "secret", token: strangerToken, body: body)
            let unused = try probe(method, route, name: "unused", token: strangerToken, body: body)
            #expect(hidden.status == 404, "\(method) \(route): \(hidden)")
            #expect(
                hidden.status == unused.status && hidden.body == unused.body,
                "\(method) \(route): \(hidden.body) || \(unused.body)")
            // Without a token, too: the same answer whether a private cache of that name exists or not.
            let anonymousHidden = try probe(method, route, name: "secret", token: nil, body: body)
            let anonymousUnused = try probe(method, route, name: "unused", token: nil, body: body)
            #expect(anonymousHidden.status == anonymousUnused.status, "\(method) \(route)")
            #expect(anonymousHidden.body == anonymousUnused.body, "\(method) \(route)")
        }
        let tokenForIt = try stranger.run(["token", "create", "--kind", "read", "--cache", "secret"], check: false)
        #expect(tokenForIt.status != 0)
        #expect(tokenForIt.stderrString.contains("does not exist in this workspace"), "\(tokenForIt.stderrString)")

        // Creating a cache of that name is the stranger's own business: it succeeds, with its own key.
        let strangerKey = try stranger.createCache("secret", public: false)
        #expect(strangerKey != ownerKey)
        func publicKey(of cli: CapstanCLI) throws -> String? {
            let info = try cli.run(["cache", "info", "secret", "--json"]).stdout
            return (try JSONSerialization.jsonObject(with: info) as? [String: Any])?["publicKey"] as? String
        }
        #expect(try publicKey(of: stranger) == strangerKey)
        #expect(try publicKey(of: owner) == ownerKey)
        // Each name means each workspace's own cache, on the Nix routes too.
        let ownerToken = try #require(owner.token)
        #expect(try HTTP.request("GET", "\(server.url)/cache/secret/\(hash).narinfo", token: ownerToken).status == 200)
        #expect(
            try HTTP.request("GET", "\(server.url)/cache/secret/\(hash).narinfo", token: strangerToken).status == 404)
        let pushed = try stranger.run(["push", "secret", closure[2]])
        #expect(pushed.status == 0)
        let depHash = String(closure[2].dropFirst("/nix/store/".count).prefix(32))
        let served = try HTTP.request("GET", "\(server.url)/cache/secret/\(depHash).narinfo", token: strangerToken)
        #expect(served.text.contains("Sig: secret-1:"))
        #expect(
            try HTTP.request("GET", "\(server.url)/cache/secret/\(depHash).narinfo", token: ownerToken).status == 200)
        let ownerServed = try HTTP.request("GET", "\(server.url)/cache/secret/\(depHash).narinfo", token: ownerToken)
        #expect(ownerServed.text != served.text, "each workspace's cache signs with its own key")
    }

    @Test func publicNamesStayUniqueAmongPublicCaches() throws {
        let publicKey = try owner.createCache("shared", public: true)
        let taken = try stranger.run(["cache", "create", "shared", "--public"], check: false)
        #expect(taken.status != 0)
        #expect(taken.stderrString.contains("a public cache named 'shared' already exists"), "\(taken.stderrString)")
        // Anyone without a cache of that name reads the public one.
        let info = try HTTP.request("GET", "\(server.url)/api/v1/caches/shared", token: try #require(stranger.token))
        #expect(info.status == 200)
        #expect(
            (try JSONSerialization.jsonObject(with: info.body) as? [String: Any])?["publicKey"] as? String == publicKey)
        #expect(try HTTP.request("GET", "\(server.url)/cache/shared/nix-cache-info").status == 200)
    }
}
