import Foundation
import TestSupport
import Testing

/// An agent that took a deployment, lost its connection and came back without mentioning it: the
/// session's timer fails the deployment `agent_reconcile_seconds` after the reconnection.
@Suite(.serialized) struct AgentReconnectTests {
    /// Speaks the agent protocol with Debian's python3-websockets: takes the deployment, drops the
    /// connection, reconnects with nothing running and prints the deployment's status 4 s later.
    static let agent = #"""
        import asyncio, http.client, json, sys, websockets
        port, admin = int(sys.argv[1]), sys.argv[2]
        def call(method, path, token, body=None):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request(method, path, body=None if body is None else json.dumps(body).encode(),
                      headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
            r = c.getresponse(); text = r.read(); c.close()
            assert r.status < 300, (path, r.status, text)
            return json.loads(text)
        async def connect(token):
            ws = await websockets.connect(f"ws://127.0.0.1:{port}/api/v1/agent/connect",
                                          extra_headers={"Authorization": f"Bearer {token}"})
            await ws.send(json.dumps({"type": "hello", "hello": {"name": "box", "version": "test",
                "system": "x86_64-linux", "currentStorePath": None, "runningDeployment": None}}))
            assert json.loads(await ws.recv())["type"] == "welcome"
            return ws
        async def main():
            token = call("POST", "/api/v1/agents", admin, {"name": "box"})["token"]
            activate = call("POST", "/api/v1/tokens", admin, {"kind": "activate"})["token"]
            ws = await connect(token)
            path = "/nix/store/" + "a" * 32 + "-box"
            call("POST", "/api/v1/deploy/activate", activate, {"agents": {"box": path}})
            order = json.loads(await ws.recv())
            deployment = order["deployment"]["id"]
            await ws.send(json.dumps({"type": "started", "id": deployment, "closureSize": None}))
            await asyncio.sleep(1)
            await ws.close()
            ws = await connect(token)
            await asyncio.sleep(4)
            info = call("GET", f"/api/v1/deployments/{deployment}", admin)
            print(json.dumps({"status": info["status"], "reason": info.get("reason")}))
            await ws.close()
        asyncio.run(main())
        """#

    @Test func aDeploymentTheReconnectedAgentNoLongerRunsIsFailed() throws {
        let temp = try TemporaryDirectory("capstan-reconnect")
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), environment: ["CAPSTAN_AGENT_RECONCILE_SECONDS": "1"])
        let client = try HelperProcess(
            ["/usr/bin/python3", "-c", Self.agent, String(server.port), try server.adminToken],
            errorPath: temp.sub("agent.err"))
        let output = client.finish()
        let result = try #require(
            output.split(separator: "\n").last.flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }, "\(output)\(client.errors)")
        #expect(result["status"] as? String == "Failed", "\(result)\n\(server.log.suffix(2000))")
        #expect((result["reason"] as? String)?.contains("no longer runs") == true, "\(result)")
    }
}
