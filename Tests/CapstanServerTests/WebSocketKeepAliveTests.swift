import Foundation
import TestSupport
import Testing

/// The server pings every WebSocket from its event loop and drops one whose last ping went
/// unanswered for a whole period: an agent whose machine died is noticed, and its connection does
/// not stay open without end. (Agents that answer are kept: see `AgentRoundsTests`, pinged every
/// second while the database is held.)
@Suite struct WebSocketKeepAliveTests {
    /// A client that upgrades, says hello, then reads nothing and answers nothing.
    static let silentAgent = #"""
        import base64, http.client, json, os, socket, sys, time
        port, admin, silence = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/agents", body=json.dumps({"name": "silent"}),
                     headers={"Authorization": "Bearer " + admin, "Content-Type": "application/json"})
        token = json.loads(conn.getresponse().read())["token"]
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(("GET /api/v1/agent/connect HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Authorization: Bearer %s\r\n\r\n" % (key, token)).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, data = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        hello = json.dumps({"type": "hello", "hello": {"name": "silent", "version": "test", "system": "x86_64-linux",
                                                       "currentStorePath": None, "runningDeployment": None}}).encode()
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | 126]) + len(hello).to_bytes(2, "big") + mask
                  + bytes(b ^ mask[i % 4] for i, b in enumerate(hello)))
        started = time.monotonic()
        time.sleep(silence)
        s.settimeout(15)  # a server that never gives up fails the read below
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        opcodes = []
        while len(data) >= 2:
            length, at = data[1] & 0x7F, 2
            if length == 126:
                length, at = int.from_bytes(data[2:4], "big"), 4
            elif length == 127:
                length, at = int.from_bytes(data[2:10], "big"), 10
            opcodes.append(data[0] & 0x0F)
            data = data[at + length:]
        print(json.dumps({"seconds": time.monotonic() - started, "opcodes": opcodes}))
        """#

    @Test func aClientThatAnswersNoPingIsDisconnected() throws {
        let temp = try TemporaryDirectory("capstan-keepalive")
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), environment: ["CAPSTAN_AGENT_PING_SECONDS": "1"])
        let client = try HelperProcess(
            ["/usr/bin/python3", "-c", Self.silentAgent, String(server.port), try server.adminToken, "4"],
            errorPath: temp.sub("client.err"))
        let output = client.finish()
        let result = try #require(
            output.split(separator: "\n").last.flatMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }, "\(output)\(client.errors)\n\(server.log.suffix(2000))")
        let opcodes = try #require(result["opcodes"] as? [Int], "\(result)")
        // The welcome (text), the ping that went unanswered, a close; the stream then ended, which
        // the client saw within its read timeout.
        #expect(opcodes.first == 1, "\(opcodes)")
        #expect(opcodes.contains(9), "no ping came: \(opcodes)")
        #expect(opcodes.last == 8, "no close frame: \(opcodes)")
        let seconds = try #require(result["seconds"] as? Double)
        #expect(seconds < 15, "the server kept a silent connection open: \(result)")
    }
}
