import Foundation
import NixCore
import TestSupport
import Testing

/// Narinfo requests whose answer is in memory are answered below Hummingbird (`NarInfoFastPath`):
/// byte for byte what the route sends (the route answers first, filling the memo), with the same
/// access rules, never ahead of a slower forwarded request on the same connection. The fast-path
/// counter of `/metrics` tells which requests were answered there, so these tests fail when it is
/// not used any more.
@Suite(.serialized) struct NarInfoFastPathTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI
    let metricsURL: String

    init() throws {
        temp = try TemporaryDirectory("capstan-narinfo-fast")
        let metricsPort = try FreePort.find()
        metricsURL = "http://127.0.0.1:\(metricsPort)/metrics"
        server = try ServerProcess(
            dataDirectory: temp.sub("data"), arguments: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
    }

    /// A raw response: its head as sent (status line and fields) and its body.
    struct Answer: Equatable {
        var head: String
        var body: Data

        var status: Int { Int(head.split(separator: " ")[1]) ?? 0 }

        /// The head with the `Date` field's value left out (it moves with the clock), once checked to be one.
        var headWithoutDate: String {
            head.split(separator: "\r\n", omittingEmptySubsequences: false).map { line in
                guard line.hasPrefix("Date: ") else { return String(line) }
                #expect(line.hasSuffix(" GMT") && line.count == "Date: Mon, 30 Nov 2026 09:00:29 GMT".count, "\(line)")
                return "Date: …"
            }.joined(separator: "\r\n")
        }
    }

    /// Sends REQUESTS (each `[method, path, extra header lines…]`, `Host: 127.0.0.1` unless one is given)
    /// on one connection, one after the other or all in one write (pipelined), and prints each raw
    /// answer as JSON; fails on bytes after the last answer.
    static let exchangeScript = #"""
        import base64, json, socket, sys
        port, mode, requests = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(30)
        def encode(r):
            host = "" if any(h.lower().startswith("host:") for h in r[2:]) else "Host: 127.0.0.1\r\n"
            return (f"{r[0]} {r[1]} HTTP/1.1\r\n{host}" + "".join(h + "\r\n" for h in r[2:]) + "\r\n").encode()
        data = b""
        def answer(method):
            global data
            while b"\r\n\r\n" not in data:
                chunk = s.recv(1 << 20)
                if not chunk: sys.exit(f"closed before an answer: {data!r}")
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            fields = {l.split(b":")[0].strip().lower(): l.split(b":", 1)[1].strip() for l in head.split(b"\r\n")[1:]}
            length = 0 if method == "HEAD" else int(fields.get(b"content-length", b"0"))
            while len(data) < length:
                chunk = s.recv(1 << 20)
                if not chunk: sys.exit("closed within a body")
                data += chunk
            body, data = data[:length], data[length:]
            return {"head": head.decode(), "body": base64.b64encode(body).decode()}
        answers = []
        if mode == "pipelined":
            s.sendall(b"".join(encode(r) for r in requests))
            answers = [answer(r[0]) for r in requests]
        else:
            for r in requests:
                s.sendall(encode(r))
                answers.append(answer(r[0]))
        s.settimeout(0.5)
        try:
            extra = s.recv(1 << 16)
        except socket.timeout:
            extra = b""
        if data or extra:
            sys.exit(f"bytes after the last answer: {(data + extra)[:200]!r}")
        print(json.dumps(answers))
        """#

    func exchange(_ requests: [[String]], pipelined: Bool = false, on server: ServerProcess? = nil) throws -> [Answer] {
        let script = temp.sub("exchange.py")
        if !FileManager.default.fileExists(atPath: script) {
            try Self.exchangeScript.write(toFile: script, atomically: true, encoding: .utf8)
        }
        let json = String(decoding: try JSONSerialization.data(withJSONObject: requests), as: UTF8.self)
        let port = (server ?? self.server).port
        let result = try ProcessRunner.run(
            ["/usr/bin/python3", script, String(port), pipelined ? "pipelined" : "sequential", json])
        guard result.status == 0 else { throw TestFailure("exchange failed: \(result.stderrString)") }
        let decoded = try JSONSerialization.jsonObject(with: result.stdout) as? [[String: String]] ?? []
        return decoded.map { Answer(head: $0["head"] ?? "", body: Data(base64Encoded: $0["body"] ?? "") ?? Data()) }
    }

    /// Another server, its `/metrics` on an address of its own; returns it and that URL.
    func extraServer(_ name: String, arguments: [String] = [], environment: [String: String] = [:]) throws
        -> (server: ServerProcess, metrics: String)
    {
        let metricsPort = try FreePort.find()
        let extra = try ServerProcess(
            dataDirectory: temp.sub(name), arguments: ["--metrics-listen", "127.0.0.1:\(metricsPort)"] + arguments,
            environment: environment)
        return (extra, "http://127.0.0.1:\(metricsPort)/metrics")
    }

    /// Pushes a fresh closure to a new public cache `cache` of `server`; returns the narinfo path of its top.
    func pushedNarInfoPath(to server: ServerProcess, cache: String) throws -> String {
        let serverAdmin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try serverAdmin.createCache(cache)
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try serverAdmin.run(["push", cache, closure[0]])
        return "/cache/\(cache)/\(closure[0].dropFirst("/nix/store/".count).prefix(32)).narinfo"
    }

    /// A sample of `/metrics` (`name` with its labels, as in the text format); 0 when absent.
    static func metric(_ name: String, at url: String) throws -> Int {
        let result = try ProcessRunner.run(["curl", "-sf", url])
        guard result.status == 0 else { throw TestFailure("GET /metrics failed: \(result.stderrString)") }
        let line = result.stdoutString.split(separator: "\n").first { $0.hasPrefix(name + " ") }
        return line.flatMap { Int(Double($0.dropFirst(name.count + 1)) ?? -1) } ?? 0
    }

    /// Requests answered by the fast path so far.
    func fastPathCount() throws -> Int { try Self.metric("capstan_narinfo_fast_path_total", at: metricsURL) }

    /// The same request twice on one connection: the route's answer and then the fast path's.
    func routeThenFastPath(_ request: [String]) throws -> (route: Answer, fast: Answer) {
        let before = try fastPathCount()
        let first = try exchange([request])[0]
        #expect(try fastPathCount() == before, "the first request was not the route's: \(request)")
        let second = try exchange([request])[0]
        #expect(try fastPathCount() == before + 1, "the memo hit was not answered by the fast path: \(request)")
        return (first, second)
    }

    /// Pushes a fresh closure to each cache, then makes the server forget what it read (creating a
    /// cache does), so the next narinfo request of each path goes through the route. Returns the hash parts.
    func pushedHashes(to caches: [String], payloadBytes: Int = 100_000) throws -> [String] {
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: payloadBytes)
        for cache in caches { try admin.run(["push", cache, closure[0]]) }
        _ = try admin.createCache("forget-\(UUID().uuidString.prefix(8).lowercased())")
        return closure.map { String($0.dropFirst("/nix/store/".count).prefix(32)) }
    }

    /// Creates a private cache and a read token of it; returns the token and its id.
    func privateCacheWithReadToken(_ cache: String) throws -> (token: String, id: String) {
        _ = try admin.createCache(cache, public: false)
        let created = try admin.run(["token", "create", "--kind", "read", "--cache", cache, "--json"])
        let object = try JSONSerialization.jsonObject(with: created.stdout) as? [String: Any]
        let token = try #require(object?["token"] as? String)
        let id = try #require((object?["info"] as? [String: Any])?["id"] as? String)
        return (token, id)
    }

    @Test func memoHitsAreTheRoutesAnswerByteForByte() throws {
        _ = try admin.createCache("open")
        _ = try admin.createCache("closed", public: false)
        let readToken = try admin.createToken(kind: "read", cache: "closed")
        let adminToken = try server.adminToken
        let hashes = try pushedHashes(to: ["open", "closed"])
        let basic = "Basic " + Data("nix:\(readToken)".utf8).base64EncodedString()
        let cases: [[String]] = [
            ["GET", "/cache/open/\(hashes[0]).narinfo"],
            ["HEAD", "/cache/open/\(hashes[1]).narinfo"],
            ["GET", "/cache/closed/\(hashes[0]).narinfo", "Authorization: Bearer \(readToken)"],
            ["HEAD", "/cache/closed/\(hashes[1]).narinfo", "Authorization: Bearer \(readToken)"],
            // Nix's netrc: the token as the basic-auth password; an admin token reads every cache of its workspace.
            ["GET", "/cache/closed/\(hashes[2]).narinfo", "Authorization: \(basic)"],
            ["GET", "/cache/open/\(hashes[2]).narinfo", "Authorization: Bearer \(adminToken)"],
        ]
        let servedBytes = #"capstan_cache_bytes_served_total{kind="narinfo"}"#
        for request in cases {
            let bytesBefore = try Self.metric(servedBytes, at: metricsURL)
            let (route, fast) = try routeThenFastPath(request)
            // Served bytes count on both paths, GETs only.
            #expect(try Self.metric(servedBytes, at: metricsURL) - bytesBefore == route.body.count + fast.body.count)
            #expect(route.status == 200, "\(request): \(route.head)")
            #expect(route.headWithoutDate == fast.headWithoutDate, "\(request)")
            #expect(route.body == fast.body, "\(request)")
            #expect(route.head.contains("Date: ") && route.head.contains("Server: capstan"), "\(route.head)")
            if request[0] == "HEAD" {
                #expect(fast.body.isEmpty)
            } else {
                let text = String(decoding: fast.body, as: UTF8.self)
                #expect(text.hasPrefix("StorePath: /nix/store/\(request[1].split(separator: "/").last!.prefix(32))"))
                #expect(fast.head.contains("Content-Length: \(fast.body.count)\r\n"), "\(fast.head)")
            }
        }
    }

    @Test func refusalsAndMissesAreLeftToTheRoute() throws {
        _ = try admin.createCache("guarded", public: false)
        _ = try admin.createCache("shared")
        let pushToken = try admin.createToken(kind: "push", cache: "shared")
        let hashes = try pushedHashes(to: ["guarded", "shared"])
        let otherWorkspace = try admin.run(["workspace", "create", "elsewhere"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let path = "/cache/guarded/\(hashes[0]).narinfo"
        // The route reads the narinfo once, so what follows would be memo hits if access allowed it.
        #expect(try exchange([["GET", path, "Authorization: Bearer \(try server.adminToken)"]])[0].status == 200)

        let before = try fastPathCount()
        let refused: [[String]] = [
            ["GET", path],  // 401: a private cache without a token
            ["GET", path, "Authorization: Bearer \(otherWorkspace)"],  // 404: another workspace's private cache
            ["GET", path, "Authorization: Bearer \(pushToken)"],  // 403: a token of another cache
            ["GET", path, "Authorization: Bearer capad_unknown"],  // 401: unknown token
            ["GET", path, "Authorization: Token \(pushToken)"],  // 401: not a scheme Capstan reads
            ["GET", "/cache/shared/\(String(repeating: "0", count: 32)).narinfo"],  // 404: not in the cache
            ["POST", "/cache/shared/\(hashes[0]).narinfo"],  // not a read
        ]
        for request in refused {
            let answers = try exchange([request, request])
            #expect(answers[0].status != 200, "\(request): \(answers[0].head)")
            #expect(answers[0].headWithoutDate == answers[1].headWithoutDate && answers[0].body == answers[1].body)
        }
        #expect(try fastPathCount() == before, "a refusal or a miss was answered by the fast path")

        // A token of another workspace reads a public cache like anyone: its second request is a memo hit.
        let shared = ["GET", "/cache/shared/\(hashes[1]).narinfo", "Authorization: Bearer \(otherWorkspace)"]
        let (route, fast) = try routeThenFastPath(shared)
        #expect(route.status == 200 && route.headWithoutDate == fast.headWithoutDate && route.body == fast.body)
    }

    @Test func aRevokedTokenIsRefusedAtOnce() throws {
        let (token, id) = try privateCacheWithReadToken("revoking")
        let hashes = try pushedHashes(to: ["revoking"])
        let request = ["GET", "/cache/revoking/\(hashes[0]).narinfo", "Authorization: Bearer \(token)"]
        let (route, fast) = try routeThenFastPath(request)
        #expect(route.status == 200 && fast.status == 200)

        let revoked = try HTTP.request("DELETE", "\(server.url)/api/v1/tokens/\(id)", token: try server.adminToken)
        #expect(revoked.status == 204)
        let before = try fastPathCount()
        let after = try exchange([request])[0]
        #expect(after.status == 401, "\(after.head)")
        #expect(String(decoding: after.body, as: UTF8.self).contains("revoked"))
        #expect(try fastPathCount() == before)
    }

    /// On one connection that keeps sending the same token, a revocation between two requests is seen
    /// by the second (the connection remembers its token's hash, never the answer to it).
    @Test func aRevokedTokenIsRefusedAtOnceOnTheSameConnection() throws {
        let (token, id) = try privateCacheWithReadToken("revoked-live")
        let hashes = try pushedHashes(to: ["revoked-live"])
        let path = "/cache/revoked-live/\(hashes[0]).narinfo"
        let script = temp.sub("revoke-between.py")
        try Self.revokeBetweenScript.write(toFile: script, atomically: true, encoding: .utf8)
        let before = try fastPathCount()
        let result = try ProcessRunner.run(
            [
                "/usr/bin/python3", script, String(server.port), path, token,
                "\(server.url)/api/v1/tokens/\(id)", try server.adminToken,
            ])
        #expect(result.status == 0, "\(result.stderrString)")
        // The route's answer, two from memory, the revocation, then the refusal on the same connection.
        #expect(result.stdoutString == "200 200 200 revoked 401\n", "\(result.stdoutString)")
        #expect(try fastPathCount() == before + 2)
    }

    /// Asks for PATH with TOKEN three times on one connection, revokes the token (DELETE URL with
    /// ADMIN) on another, asks once more on the first; prints the statuses.
    static let revokeBetweenScript = #"""
        import socket, sys, urllib.request
        port, path, token, url, admin = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(30)
        data = b""
        def ask():
            global data
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk: sys.exit("closed")
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
            while len(data) < length:
                data += s.recv(65536)
            data = data[length:]
            return head.split(b" ")[1].decode()
        statuses = [ask(), ask(), ask()]
        request = urllib.request.Request(url, method="DELETE", headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(request) as response:
            statuses.append("revoked" if response.status == 204 else str(response.status))
        statuses.append(ask())
        print(" ".join(statuses))
        """#

    @Test func pipelinedAnswersLeaveInRequestOrder() throws {
        _ = try admin.createCache("piped")
        let hashes = try pushedHashes(to: ["piped"], payloadBytes: 4_000_000)
        let narinfo = { (index: Int) in "/cache/piped/\(hashes[index]).narinfo" }
        // Fill the memo and learn what each answer must be.
        let expected = try exchange((0..<3).map { ["GET", narinfo($0)] })
        let info = try NarInfo(parsing: String(decoding: expected[2].body, as: UTF8.self))
        let nar = try Data(contentsOf: URL(fileURLWithPath: server.dataDirectory + "/blobs/" + info.url))
        let missing = "/cache/piped/\(String(repeating: "1", count: 32)).narinfo"

        let before = try fastPathCount()
        let answers = try exchange(
            [
                ["GET", narinfo(0)],  // a memo hit, answered at once
                ["GET", "/cache/piped/\(info.url)"],  // a large NAR through the router
                ["GET", narinfo(1)],  // memo hits behind it wait for it
                ["HEAD", narinfo(0)],
                ["GET", missing],  // a miss, through the router
                ["GET", narinfo(2)],
                ["GET", "/cache/piped/nix-cache-info"],
                ["GET", narinfo(1), "Connection: close"],
            ], pipelined: true)
        #expect(answers.map(\.status) == [200, 200, 200, 200, 404, 200, 200, 200])
        #expect(answers[0].body == expected[0].body)
        #expect(answers[1].body == nar, "the NAR arrived cut or mixed with other answers")
        #expect(answers[2].body == expected[1].body)
        #expect(answers[3].body.isEmpty && answers[3].head.contains("Content-Length: \(expected[0].body.count)\r\n"))
        #expect(answers[5].body == expected[2].body)
        #expect(String(decoding: answers[6].body, as: UTF8.self).contains("StoreDir: /nix/store"))
        #expect(answers[7].body == expected[1].body)
        #expect(try fastPathCount() > before, "not even the first memo hit was answered by the fast path")

        // On a connection of its own, every memo hit is answered by the fast path, in order.
        let again = try fastPathCount()
        let hits = try exchange([["GET", narinfo(2)], ["HEAD", narinfo(1)], ["GET", narinfo(0)]], pipelined: true)
        #expect(hits.map(\.body) == [expected[2].body, Data(), expected[0].body])
        #expect(try fastPathCount() == again + 3)
    }

    /// Caches on hosts of their own (`<cache>.<cache host>/<hash>.narinfo`): the Host header names the
    /// cache, for the fast path as for the route.
    @Test func hostRoutedNarInfoIsAnsweredTheSame() throws {
        let (hosted, metrics) = try extraServer("hosted", arguments: ["--cache-host", "cache.test"])
        defer { hosted.stop() }
        let hostedAdmin = CapstanCLI(url: hosted.url, token: try hosted.adminToken)
        _ = try hostedAdmin.createCache("fleet")
        _ = try hostedAdmin.createCache("other")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try hostedAdmin.run(["push", "fleet", closure[0]])
        let hash = String(closure[0].dropFirst("/nix/store/".count).prefix(32))
        let request = ["GET", "/\(hash).narinfo", "Host: fleet.cache.test"]
        let pathStyle = try exchange([["GET", "/cache/fleet/\(hash).narinfo"]], on: hosted)[0]
        let before = try Self.metric("capstan_narinfo_fast_path_total", at: metrics)
        let answers = try exchange(
            [request, request, ["GET", "/\(hash).narinfo", "Host: other.cache.test"]], on: hosted)
        #expect(answers.map(\.status) == [200, 200, 404])
        #expect(answers[0].headWithoutDate == pathStyle.headWithoutDate && answers[0].body == pathStyle.body)
        #expect(answers[1].headWithoutDate == pathStyle.headWithoutDate && answers[1].body == pathStyle.body)
        #expect(try Self.metric("capstan_narinfo_fast_path_total", at: metrics) == before + 2)
    }

    /// Answers of the fast path count as activity for the idle timeout, and after the last one the
    /// connection is closed once the timeout has passed, as after any answer.
    @Test func theIdleTimeoutSeesFastPathAnswers() throws {
        let (idle, metrics) = try extraServer("idle", environment: ["CAPSTAN_HTTP_IDLE_TIMEOUT_SECONDS": "1"])
        defer { idle.stop() }
        let path = try pushedNarInfoPath(to: idle, cache: "kept")
        #expect(try HTTP.request("GET", idle.url + path).status == 200)
        let script = temp.sub("idle.py")
        try Self.idleScript.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try ProcessRunner.run(["/usr/bin/python3", script, String(idle.port), path])
        #expect(result.status == 0, "\(result.stdoutString) \(result.stderrString)")
        #expect(result.stdoutString == "answered 10\nclosed\n", "\(result.stdoutString) \(result.stderrString)")
        let answered = try Self.metric("capstan_narinfo_fast_path_total", at: metrics)
        #expect(answered >= 10, "the requests were not answered by the fast path")
    }

    /// Asks for PATH ten times on one connection, 0.3 s apart (3 s in all, beyond a 1 s idle timeout),
    /// prints `answered N`, then waits for the server to close the connection and prints `closed`.
    static let idleScript = #"""
        import socket, sys, time
        port, path = int(sys.argv[1]), sys.argv[2]
        s = socket.create_connection(("127.0.0.1", port))
        s.settimeout(10)
        answered = 0
        for _ in range(10):
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk: sys.exit(f"closed after {answered} answers")
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
            while len(body) < length:
                body += s.recv(65536)
            answered += 1
            time.sleep(0.3)
        print("answered", answered, flush=True)
        started = time.monotonic()
        if s.recv(1) == b"" and time.monotonic() - started < 5:
            print("closed")
        """#

    /// Connections whose requests were all answered from memory count as idle between requests, as
    /// any kept-alive connection: over the cap, the oldest of them make room for new clients.
    @Test func connectionsAnsweredFromMemoryMakeRoomOverTheCap() throws {
        let (capped, metrics) = try extraServer("capped", environment: ["CAPSTAN_MAX_CONNECTIONS": "20"])
        defer { capped.stop() }
        let path = try pushedNarInfoPath(to: capped, cache: "busy")
        #expect(try HTTP.request("GET", capped.url + path).status == 200)
        let before = try Self.metric("capstan_narinfo_fast_path_total", at: metrics)
        let script = temp.sub("hold.py")
        try Self.holdScript.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try ProcessRunner.run(["/usr/bin/python3", script, String(capped.port), path, "30", "3"])
        #expect(result.status == 0, "\(result.stderrString)")
        let words = result.stdoutString.split(whereSeparator: \.isWhitespace)
        // 30 clients for 20 places, each answered from memory: at least 10 of them were closed for newer ones.
        #expect(words.count == 4 && words[0] == "held" && words[1] == "30", "\(result.stdoutString)")
        #expect(words.count == 4 && (Int(words[3]) ?? 0) >= 10, "\(result.stdoutString)")
        #expect(try Self.metric("capstan_narinfo_fast_path_total", at: metrics) == before + 30)
    }

    /// Opens COUNT connections one after the other, asks each for PATH and keeps it open; waits
    /// SECONDS, then prints `held N closed M` (how many the server has closed meanwhile).
    static let holdScript = #"""
        import select, socket, sys, time
        port, path, count, wait = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
        held = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk: break
                data += chunk
            if data.startswith(b"HTTP/1.1 200 "): held.append(s)
        time.sleep(wait)
        def closed(s):
            r, _, _ = select.select([s], [], [], 0)
            if not r: return False
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk: return True
                    r, _, _ = select.select([s], [], [], 0)
                    if not r: return False
            except OSError:
                return True
        print("held", len(held), "closed", sum(1 for s in held if closed(s)))
        """#

    @Test func switchedOffEveryRequestGoesThroughTheRouter() throws {
        let (plain, metrics) = try extraServer("plain", environment: ["CAPSTAN_NARINFO_FAST_PATH": "false"])
        defer { plain.stop() }
        let url = plain.url + (try pushedNarInfoPath(to: plain, cache: "routed"))
        for _ in 0..<3 { #expect(try HTTP.request("GET", url).status == 200) }
        #expect(try Self.metric(#"capstan_cache_requests_total{kind="narinfo",result="hit"}"#, at: metrics) == 3)
        #expect(try Self.metric("capstan_narinfo_fast_path_total", at: metrics) == 0)
    }
}
