import Foundation
import TestSupport
import Testing

/// A webhook receiver of the test's own: Python's http.server on a free loopback port. It answers
/// 500 to the first `failFirst` requests, then 204, and appends what it got (with whether the
/// signature matched the HMAC it computes itself) to a JSON-lines file.
final class WebhookReceiver: @unchecked Sendable {
    let port: Int
    let recordPath: String
    let process: Process

    init(secret: String, failFirst: Int, in temp: TemporaryDirectory) throws {
        port = try FreePort.find()
        recordPath = temp.sub("webhook-\(port).jsonl")
        let script = temp.sub("webhook-\(port).py")
        try """
        import hashlib, hmac, http.server, json, sys
        secret, fail_first, record = sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
        seen = 0
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                global seen
                seen += 1
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
                given = self.headers.get("X-Capstan-Signature", "")
                status = 500 if seen <= fail_first else 204
                with open(record, "a") as f:
                    f.write(json.dumps({"n": seen, "status": status, "valid": hmac.compare_digest(expected, given),
                                        "signature": given, "body": json.loads(body)}) + "\\n")
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
        """.write(toFile: script, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [script, String(port), secret, String(failFirst), recordPath]
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
    @Test func finishedDeploymentIsSignedAndRetried() throws {
        let fixture = try DeployFixture()
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
        let fixture = try DeployFixture()
        let refused = try fixture.admin.run(["webhook", "add", "ftp://example.invalid/x"], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("http"), "\(refused.stderrString)")
    }
}
