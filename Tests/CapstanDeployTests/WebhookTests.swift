import Foundation
import TestSupport
import Testing

/// A webhook receiver of the test's own: Python's http.server on a free loopback port. It answers
/// 500 to the first `failFirst` requests, then 204 (or, with `redirect`, 302 to that URL), and
/// appends what it got (with whether the signature matched the HMAC it computes itself) to a
/// JSON-lines file.
final class WebhookReceiver: @unchecked Sendable {
    let port: Int
    let recordPath: String
    let process: Process

    init(secret: String, failFirst: Int, redirect: String? = nil, in temp: TemporaryDirectory) throws {
        port = try FreePort.find()
        recordPath = temp.sub("webhook-\(port).jsonl")
        let script = temp.sub("webhook-\(port).py")
        try """
        import hashlib, hmac, http.server, json, sys
        secret, fail_first, record, redirect = sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4], sys.argv[5]
        seen = 0
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                global seen
                seen += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Capstan-Signature", "")
                status = 500 if seen <= fail_first else 302 if redirect else 204
                with open(record, "a") as f:
                    f.write(json.dumps({"n": seen, "status": status, "valid": hmac.compare_digest(expected, given),
                                        "signature": given, "body": json.loads(body)}) + "\\n")
                self.send_response(status)
                if status == 302:
                    self.send_header("Location", redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, String(port), secret, String(failFirst), recordPath, redirect ?? ""]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let ready = eventually(timeout: 20) {
            (try? ProcessRunner.run(["curl", "-s", "-o", "/dev/null", "http://127.0.0.1:\(port)/"]).status) == 0
        }
        guard ready else { throw TestFailure("the webhook receiver did not start") }
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }

    var requests: [[String: Any]] {
        guard let text = try? String(contentsOfFile: recordPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    deinit {
        // SIGKILL: the test process blocks most signals, and its children inherit that mask.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}

@Suite(.serialized) struct WebhookTests {
    /// Receivers in these tests listen on loopback, which the server refuses unless allowed.
    static let allowLoopback = ["CAPSTAN_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8, ::1/128"]

    @Test func finishedDeploymentIsSignedAndRetried() throws {
        let fixture = try DeployFixture(serverEnvironment: Self.allowLoopback)
        let receiver = try WebhookReceiver(secret: "s3cret", failFirst: 1, in: fixture.temp)
        let id = try fixture.admin.run(["webhook", "add", receiver.url, "--secret", "s3cret"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let listed = try fixture.admin.run(["webhook", "list"]).stdoutString
        #expect(listed.contains("\(id)\t\(receiver.url)\tsigned"), "\(listed)")

        try fixture.addAgent("hooked")
        let path = try fixture.configuration("hooked", marker: fixture.marker("hooked"))
        let result = try fixture.activate(try fixture.deployJSON(["hooked": path]))
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)")
        let deploymentID = try #require(DeployFixture.deploymentIDs(result.stdoutString)["hooked"])

        #expect(eventually(timeout: 30) { receiver.requests.count >= 2 }, "\(receiver.requests)")
        let requests = receiver.requests
        #expect(requests.map { $0["status"] as? Int } == [500, 204])
        for request in requests {
            #expect(request["valid"] as? Bool == true, "signature \(request["signature"] ?? "")")
            let body = request["body"] as? [String: Any]
            #expect(body?["event"] as? String == "deployment.finished")
            let deployment = body?["deployment"] as? [String: Any]
            #expect(deployment?["id"] as? String == deploymentID)
            #expect(deployment?["status"] as? String == "Succeeded")
            #expect(deployment?["agent"] as? String == "hooked")
        }

        let deliveries = try #require(
            try JSONSerialization.jsonObject(
                with: try fixture.admin.run(["webhook", "deliveries", "--json"]).stdout) as? [[String: Any]])
        #expect(deliveries.map { $0["attempt"] as? Int } == [2, 1], "\(deliveries)")
        #expect(deliveries.map { $0["delivered"] as? Bool } == [true, false])
        #expect(deliveries.map { $0["statusCode"] as? Int } == [204, 500])
        #expect(deliveries.allSatisfy { $0["deploymentID"] as? String == deploymentID })

        try fixture.admin.run(["webhook", "remove", id])
        #expect(try fixture.admin.run(["webhook", "list"]).stdoutString.isEmpty)
        let audit = try fixture.admin.run(["audit"]).stdoutString
        #expect(audit.contains("webhook.add") && audit.contains("webhook.remove"), "\(audit)")
    }

    @Test func webhookURLMustBeHTTP() throws {
        let fixture = try DeployFixture(serverEnvironment: Self.allowLoopback)
        let refused = try fixture.admin.run(["webhook", "add", "ftp://example.invalid/x"], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("http"), "\(refused.stderrString)")
    }

    /// Server-side request forgery: a workspace admin chooses where the server sends requests. Internal
    /// addresses are refused when the webhook is added and again, after resolving the host, at every
    /// delivery; redirects are not followed; a failed delivery says nothing about the network.
    @Test func internalDestinationsAreRefusedAndRedirectsNotFollowed() throws {
        let temp = try TemporaryDirectory("capstan-ssrf")
        let data = temp.sub("data")
        let target = try WebhookReceiver(secret: "", failFirst: 0, in: temp)
        var server = try ServerProcess(dataDirectory: data)
        let token = try server.adminToken
        func admin() -> CapstanCLI { CapstanCLI(url: server.url, token: token) }

        let port = target.port
        let internalURLs = [
            "http://127.0.0.1:\(port)/hook", "http://localhost:\(port)/hook", "http://[::1]:\(port)/hook",
            "http://[::ffff:127.0.0.1]:\(port)/hook", "http://0.0.0.0:\(port)/hook", "http://2130706433:\(port)/hook",
            "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://172.16.5.4/", "http://192.168.1.1/",
            "http://100.100.100.200/", "http://[fd00::1]/", "http://[fe80::1]/",
        ]
        for url in internalURLs {
            let refused = try admin().run(["webhook", "add", url], check: false)
            #expect(refused.status != 0, "\(url) was accepted")
            #expect(refused.stderrString.contains("internal address"), "\(url): \(refused.stderrString)")
        }
        #expect(try admin().run(["webhook", "list"]).stdoutString.isEmpty)

        // The operator allows loopback: webhooks to it are accepted, by name too.
        server.stop()
        server = try ServerProcess(dataDirectory: data, environment: Self.allowLoopback)
        let reached = try admin().run(["webhook", "add", "http://localhost:\(port)/hook"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // A receiver that redirects to another (the redirect must not be followed, whatever its method).
        let redirector = try WebhookReceiver(secret: "", failFirst: 0, redirect: target.url, in: temp)
        let redirected = try admin().run(["webhook", "add", redirector.url]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // A closed port: the delivery must not say so.
        let closed = try admin().run(["webhook", "add", "http://127.0.0.1:\(try FreePort.find())/hook"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)

        try finishADeployment(server, token: token, agent: "first", in: temp)
        #expect(eventually(timeout: 30) { target.requests.count == 1 }, "\(target.requests)")
        #expect(eventually(timeout: 30) { redirector.requests.count >= 1 })
        // Each webhook's first attempt recorded (they run concurrently).
        var first: [[String: Any]] = []
        #expect(
            eventually(timeout: 30) {
                first = (try? deliveries(server, token: token)) ?? []
                return [reached, redirected, closed].allSatisfy { id in
                    first.contains { $0["webhookID"] as? String == id }
                }
            }, "\(first)")
        #expect(first.first { $0["webhookID"] as? String == reached }?["delivered"] as? Bool == true, "\(first)")
        let redirect = try #require(first.first { $0["webhookID"] as? String == redirected }, "\(first)")
        #expect(redirect["delivered"] as? Bool == false)
        #expect(redirect["statusCode"] as? Int == 302)
        let unreachable = try #require(first.first { $0["webhookID"] as? String == closed }, "\(first)")
        #expect(unreachable["delivered"] as? Bool == false)
        #expect(unreachable["error"] as? String == "could not connect, or no answer in time", "\(unreachable)")
        // Only the direct delivery reached the target: the 302 was not followed.
        Thread.sleep(forTimeInterval: 1)
        #expect(target.requests.count == 1, "\(target.requests)")

        // Allowed no longer: the stored webhook resolves to loopback at delivery and is refused then.
        server.stop()
        server = try ServerProcess(dataDirectory: data)
        try finishADeployment(server, token: token, agent: "second", in: temp)
        var refusal: [String: Any]?
        #expect(
            eventually(timeout: 30) {
                refusal = try? deliveries(server, token: token).first {
                    $0["webhookID"] as? String == reached && $0["delivered"] as? Bool == false
                }
                return refusal != nil
            })
        #expect(refusal?["error"] as? String == "destination not allowed", "\(refusal ?? [:])")
        #expect(refusal?["statusCode"] == nil || refusal?["statusCode"] is NSNull)
        #expect(target.requests.count == 1, "\(target.requests)")
        server.stop()
    }

    /// Creates an agent, activates a deployment for it and cancels it while pending: a finished
    /// deployment, with no machine involved.
    func finishADeployment(_ server: ServerProcess, token: String, agent: String, in temp: TemporaryDirectory) throws {
        let created = try HTTP.request(
            "POST", "\(server.url)/api/v1/agents", token: token, headers: ["Content-Type: application/json"],
            bodyFile: try write(#"{"name":"\#(agent)"}"#, in: temp))
        #expect(created.status == 201, "\(created.text)")
        let spec = #"{"agents":{"\#(agent)":"/nix/store/\#(String(repeating: "a", count: 32))-system"}}"#
        let activated = try HTTP.request(
            "POST", "\(server.url)/api/v1/deploy/activate", token: token, bodyFile: try write(spec, in: temp))
        let response = try JSONSerialization.jsonObject(with: activated.body) as? [String: Any]
        let id = try #require(((response?["agents"] as? [String: Any])?[agent] as? [String: Any])?["id"] as? String)
        let cancelled = try HTTP.request("POST", "\(server.url)/api/v1/deployments/\(id)/cancel", token: token)
        #expect(cancelled.status == 200, "\(cancelled.text)")
    }

    func deliveries(_ server: ServerProcess, token: String) throws -> [[String: Any]] {
        let answer = try HTTP.request("GET", "\(server.url)/api/v1/webhooks/deliveries", token: token)
        return try JSONSerialization.jsonObject(with: answer.body) as? [[String: Any]] ?? []
    }

    func write(_ text: String, in temp: TemporaryDirectory) throws -> String {
        let path = temp.sub("body-\(UUID().uuidString).json")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
