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
        // HEAD shows headers: all but the date must match. Header lines end in CRLF, which Swift
        // counts as one Character, so lines are split on any newline, not on "\n".
        let text = answer.text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
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
            ("POST", "/api/v1/caches/NAME/gc?dry_run=1"), ("POST", "/api/v1/caches/NAME/gc"),
            ("POST", "/api/v1/caches/NAME/verify"), ("POST", "/api/v1/caches/NAME/rm"),
        ]
        for (method, route) in routes {
            let bodies = [
                "missing": #"{"hashes":[]}"#, "rm": #"{"paths":["\#(closure[0])"],"force":true,"dryRun":true}"#,
            ]
            let body =
                method == "GET" || method == "HEAD" ? nil : bodies[String(route.split(separator: "/").last!)] ?? "{}"
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
        // The dashboard's cache settings, signed in with the stranger's admin token.
        let session = try signIn(strangerToken)
        for form in [nil, "keepGenerations=0"] {
            let answers = try ["secret", "unused"].map { name in
                let answer = try dashboard(
                    form == nil ? "GET" : "POST", "/caches/\(name)/settings", session, form: form)
                return (answer.status, answer.body.replacingOccurrences(of: name, with: "NAME"))
            }
            #expect(answers[0].0 == "404" && answers[0] == answers[1], "\(answers)")
        }
        let kept = try owner.run(["cache", "info", "secret", "--json"]).stdoutString
        #expect(!kept.contains(#""keepGenerations":0"#) && !kept.contains(#""keepGenerations" : 0"#), "\(kept)")
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

    /// A browser session for `token`: its cookie jar.
    func signIn(_ token: String) throws -> String {
        let jar = temp.sub("jar-\(UUID().uuidString)")
        _ = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-c", jar, "-H", "Origin: \(server.url)", "--data-urlencode",
            "token=\(token)", "\(server.url)/sign-in",
        ])
        return jar
    }

    /// A dashboard page or form post of a session (from this server's own pages unless `origin` says
    /// otherwise): its status and body.
    func dashboard(_ method: String, _ path: String, _ jar: String, form: String? = nil, origin: String? = nil)
        throws -> (status: String, body: String)
    {
        var args = ["curl", "-s", "-b", jar, "-X", method, "-w", "\n%{http_code}"]
        if let form { args += ["-H", "Origin: \(origin ?? server.url)", "--data", form] }
        let output = try ProcessRunner.run(args + [server.url + path]).stdoutString
        let status = String(output.split(separator: "\n").last ?? "")
        return (status, String(output.dropLast(status.count)))
    }

    /// A rollout answers another workspace exactly as an id nobody uses, on the API and the dashboard;
    /// a preview names no agent of another workspace; only tokens that may change deployments steer it.
    @Test func anotherWorkspacesRolloutsAndAgentsRevealNothing() throws {
        for name in ["wave-one", "wave-two"] { _ = try owner.run(["agent", "create", name]) }
        let path = "/nix/store/\(String(repeating: "w", count: 32))-system"
        let deployJSON = temp.sub("deploy.json")
        try
            #"{"agents": {"wave-one": "\#(path)", "wave-two": "\#(path)"}, "rollout": {"waves": [["wave-one"], ["wave-two"]]}}"#
            .write(toFile: deployJSON, atomically: true, encoding: .utf8)
        let activated = try owner.run(["deploy", "activate", deployJSON, "--async", "--json"]).stdout
        let rollout =
            (try JSONSerialization.jsonObject(with: activated) as? [String: Any])?["rollout"] as? [String: Any]
        let id = try #require(rollout?["id"] as? String, "\(String(decoding: activated, as: UTF8.self))")
        let nobodys = UUID().uuidString.lowercased()
        let strangerToken = try #require(stranger.token)

        for (method, route) in [
            ("GET", "/api/v1/rollouts/NAME"), ("POST", "/api/v1/rollouts/NAME/pause"),
            ("POST", "/api/v1/rollouts/NAME/resume"), ("POST", "/api/v1/rollouts/NAME/abort"),
        ] {
            let hidden = try probe(method, route, name: id, token: strangerToken)
            let unused = try probe(method, route, name: nobodys, token: strangerToken)
            #expect(hidden.status == 404 && hidden == unused, "\(method) \(route): \(hidden) || \(unused)")
        }
        let session = try signIn(strangerToken)
        for (method, route) in [
            ("GET", "/rollouts/ID"), ("POST", "/rollouts/ID/pause"), ("POST", "/rollouts/ID/abort"),
        ] {
            let form = method == "POST" ? "" : nil
            let hidden = try dashboard(method, route.replacingOccurrences(of: "ID", with: id), session, form: form)
            let unused = try dashboard(method, route.replacingOccurrences(of: "ID", with: nobodys), session, form: form)
            #expect(hidden.status == "404", "\(method) \(route): \(hidden)")
            #expect(
                hidden.body.replacingOccurrences(of: id, with: "ID")
                    == unused.body.replacingOccurrences(of: nobodys, with: "ID"),
                "\(method) \(route)")
        }

        // A preview naming another workspace's agent answers as for a name nobody uses.
        let diffs = try ["wave-one", "nobody-at-all"].map { name in
            try probe(
                "POST", "/api/v1/deploy/diff", name: name, token: strangerToken,
                body: #"{"agents": {"NAME": "\#(path)"}}"#.replacingOccurrences(of: "NAME", with: name))
        }
        #expect(diffs[0].status == 400 && diffs[0] == diffs[1], "\(diffs)")

        // The owner's own tokens that may not change deployments cannot steer it (AccessPolicy).
        let ownerToken = try #require(owner.token)
        _ = try owner.createCache("own-cache", public: false)
        for kind in [["--kind", "push", "--cache", "own-cache"], ["--kind", "read", "--cache", "own-cache"]] {
            let token = try owner.run(["token", "create"] + kind).stdoutString
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try HTTP.request("GET", "\(server.url)/api/v1/rollouts/\(id)", token: token).status == 403)
            #expect(try HTTP.request("POST", "\(server.url)/api/v1/rollouts/\(id)/abort", token: token).status == 403)
        }
        let agentToken = try #require(
            (try JSONSerialization.jsonObject(with: owner.run(["agent", "create", "bystander", "--json"]).stdout)
                as? [String: Any])?["token"] as? String)
        #expect(try HTTP.request("POST", "\(server.url)/api/v1/rollouts/\(id)/pause", token: agentToken).status == 403)
        // A cross-origin form post of the owner's own session is refused.
        let ownerSession = try signIn(ownerToken)
        let crossOrigin = try dashboard(
            "POST", "/rollouts/\(id)/abort", ownerSession, form: "", origin: "http://evil.example")
        #expect(crossOrigin.status == "403", "\(crossOrigin)")
        let crossOriginSettings = try dashboard(
            "POST", "/caches/own-cache/settings", ownerSession, form: "keepGenerations=0", origin: "http://evil.example"
        )
        #expect(crossOriginSettings.status == "403", "\(crossOriginSettings)")
        let state = try HTTP.request("GET", "\(server.url)/api/v1/rollouts/\(id)", token: ownerToken)
        let shown = try JSONSerialization.jsonObject(with: Data(state.text.utf8)) as? [String: Any]
        #expect(state.status == 200 && shown?["state"] as? String == "Running", "\(state.text)")

        // An activate token's session reads but does not manage caches.
        let activate = try owner.run(["token", "create", "--kind", "activate"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let activateSession = try signIn(activate)
        #expect(try dashboard("GET", "/caches/own-cache/settings", activateSession).status == "403")
        #expect(
            try dashboard("POST", "/caches/own-cache/settings", activateSession, form: "keepGenerations=0").status
                == "403")
        #expect(try dashboard("GET", "/rollouts/\(id)", activateSession).status == "200")
    }
}
