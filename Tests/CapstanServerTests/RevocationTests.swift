import Foundation
import TestSupport
import Testing

/// Revoking a token ends what it holds open, at once: an agent's WebSocket, a log stream.
@Suite(.serialized) struct RevocationTests {
    /// Connects as an agent and prints each message it receives, then `closed` when the server closes.
    static let listeningAgent = #"""
        import asyncio, json, sys, time, websockets
        url, token, name, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
        async def main():
            async with websockets.connect(url, extra_headers={"Authorization": "Bearer " + token}) as ws:
                await ws.send(json.dumps({"type": "hello", "hello": {"name": name, "version": "t", "system": "x86_64-linux"}}))
                started = time.monotonic()
                try:
                    while time.monotonic() - started < seconds:
                        message = await asyncio.wait_for(ws.recv(), timeout=seconds)
                        print(json.loads(message)["type"], round(time.monotonic() - started, 2), flush=True)
                except websockets.ConnectionClosed:
                    print("closed", round(time.monotonic() - started, 2), flush=True)
                except asyncio.TimeoutError:
                    print("still open", flush=True)
        asyncio.run(main())
        """#

    @Test func revokingAnAgentTokenClosesItsConnectionAndDeliversNothingMore() throws {
        let temp = try TemporaryDirectory("capstan-revoke")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let adminToken = try server.adminToken
        let admin = CapstanCLI(url: server.url, token: adminToken)
        let created = try admin.run(["agent", "create", "doomed", "--json"]).stdout
        let token = try #require(
            (try JSONSerialization.jsonObject(with: created) as? [String: Any])?["token"] as? String)
        let tokens =
            try JSONSerialization.jsonObject(with: admin.run(["token", "list", "--json"]).stdout) as? [[String: Any]]
        let tokenID = try #require(tokens?.first { ($0["kind"] as? String) == "agent" }?["id"] as? String)

        let program = temp.sub("agent.py")
        try Self.listeningAgent.write(toFile: program, atomically: true, encoding: .utf8)
        let output = temp.sub("agent.out")
        FileManager.default.createFile(atPath: output, contents: nil)
        let agent = Process()
        agent.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        agent.arguments = [
            program, server.url.replacingOccurrences(of: "http://", with: "ws://") + "/api/v1/agent/connect", token,
            "doomed", "20",
        ]
        agent.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
        agent.standardError = agent.standardOutput
        try agent.run()
        ProcessWatchdog.killWhenTestsEnd(agent.processIdentifier)
        defer { if agent.isRunning { agent.terminate() } }
        #expect(try eventually(timeout: 20) { try String(contentsOfFile: output, encoding: .utf8).contains("welcome") })

        let revokedAt = Date()
        #expect(try HTTP.request("DELETE", "\(server.url)/api/v1/tokens/\(tokenID)", token: adminToken).status == 204)
        #expect(try eventually(timeout: 10) { !agent.isRunning })
        let elapsed = Date().timeIntervalSince(revokedAt)
        let printed = try String(contentsOfFile: output, encoding: .utf8)
        #expect(printed.contains("closed"), "\(printed)")
        #expect(elapsed < 3, "the connection outlived the revocation by \(elapsed) s")

        // A deployment after the revocation reaches nobody, and the token cannot reconnect.
        let deployJSON = temp.sub("deploy.json")
        try #"{"agents": {"doomed": "/nix/store/\#(String(repeating: "d", count: 32))-system"}}"#
            .write(toFile: deployJSON, atomically: true, encoding: .utf8)
        try admin.run(["deploy", "activate", deployJSON, "--async"])
        let again = try ProcessRunner.run([
            "/usr/bin/python3", program,
            server.url.replacingOccurrences(of: "http://", with: "ws://") + "/api/v1/agent/connect",
            token, "doomed", "2",
        ])
        #expect(!again.stdoutString.contains("deploy"), "\(again.stdoutString)")
        #expect(
            again.status != 0 || !again.stdoutString.contains("welcome"), "\(again.stdoutString) \(again.stderrString)")
    }
}
