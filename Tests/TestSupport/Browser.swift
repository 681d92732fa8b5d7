import Foundation

/// A headless Chromium driven over the DevTools protocol. Each call runs a small Python client
/// (standard library only) that attaches to the browser's page, so cookies and the open page
/// persist between calls as in a person's browser.
public final class Browser: @unchecked Sendable {
    public let port: Int
    let process: Process
    let script: String
    let profile: String

    public init(in directory: TemporaryDirectory, width: Int = 1280, height: Int = 900) throws {
        port = try FreePort.find()
        profile = directory.sub("chromium-\(port)")
        script = directory.sub("cdp-\(port).py")
        try Self.client.write(toFile: script, atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/chromium")
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--hide-scrollbars", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=\(port)",
            "--user-data-dir=\(profile)", "--window-size=\(width),\(height)", "about:blank",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let ready = eventually(timeout: 30) {
            (try? ProcessRunner.run(["curl", "-sf", "http://127.0.0.1:\(port)/json/version"]).status) == 0
        }
        guard ready else { throw TestFailure("chromium did not open its DevTools port \(port)") }
    }

    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") }

    func call(_ arguments: [String]) throws -> String {
        let result = try ProcessRunner.run(["python3", script, String(port)] + arguments)
        guard result.status == 0 else {
            throw TestFailure("DevTools \(arguments.first ?? ""): \(result.stderrString)")
        }
        return result.stdoutString
    }

    /// Opens `url` and waits until the page has loaded.
    public func open(_ url: String) throws {
        _ = try call(["navigate", url])
        _ = eventually(timeout: 20) { (try? evaluate("document.readyState")) as? String == "complete" }
    }

    /// The value of a JavaScript expression (JSON-decoded); promises are awaited.
    public func evaluate(_ expression: String) throws -> Any? {
        let output = try call(["eval", expression])
        return try JSONSerialization.jsonObject(with: Data(output.utf8), options: [.fragmentsAllowed])
    }

    public func string(_ expression: String) throws -> String { try evaluate(expression) as? String ?? "" }

    /// The visible text of the page.
    public var text: String { (try? string("document.body ? document.body.innerText : ''")) ?? "" }

    public var path: String { (try? string("location.pathname + location.search")) ?? "" }

    /// Writes a PNG of the viewport.
    public func screenshot(to file: String) throws {
        _ = try call(["screenshot", file])
    }

    deinit {
        // SIGKILL: the test process blocks most signals, and its children inherit that mask.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        // Its helper processes (renderers, zygote) are found by the profile directory only this browser uses.
        _ = try? ProcessRunner.run(["pkill", "-KILL", "-f", "user-data-dir=\(profile)"])
    }

    static let client = #"""
        import base64, json, os, socket, struct, sys, urllib.request

        def page_socket(port):
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            rest = url.split("://", 1)[1]
            hostport, path = rest.split("/", 1)
            host, p = hostport.split(":")
            sock = socket.create_connection((host, int(p)))
            key = base64.b64encode(os.urandom(16)).decode()
            sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(1)
                if not chunk:
                    raise SystemExit("DevTools closed the connection during the handshake")
                head += chunk
            if b" 101 " not in head.split(b"\r\n", 1)[0]:
                raise SystemExit("DevTools refused the WebSocket: " + head.decode(errors="replace"))
            return sock

        def read_exact(sock, n):
            data = b""
            while len(data) < n:
                chunk = sock.recv(n - len(data))
                if not chunk:
                    raise SystemExit("DevTools closed the connection")
                data += chunk
            return data

        def send(sock, text):
            payload = text.encode()
            header = bytes([0x81])
            n = len(payload)
            if n < 126:
                header += bytes([0x80 | n])
            elif n < 65536:
                header += bytes([0x80 | 126]) + struct.pack(">H", n)
            else:
                header += bytes([0x80 | 127]) + struct.pack(">Q", n)
            mask = os.urandom(4)
            sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

        def receive(sock):
            message = b""
            while True:
                b0, b1 = read_exact(sock, 2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack(">H", read_exact(sock, 2))[0]
                elif n == 127:
                    n = struct.unpack(">Q", read_exact(sock, 8))[0]
                payload = read_exact(sock, n)
                if b0 & 0x0F in (0x1, 0x0):
                    message += payload
                    if b0 & 0x80:
                        return json.loads(message)

        def command(sock, ident, method, params):
            send(sock, json.dumps({"id": ident, "method": method, "params": params}))
            while True:
                reply = receive(sock)
                if reply.get("id") == ident:
                    if "error" in reply:
                        raise SystemExit(f"{method}: {reply['error']}")
                    return reply["result"]

        port, action = sys.argv[1], sys.argv[2]
        sock = page_socket(port)
        if action == "navigate":
            command(sock, 1, "Page.navigate", {"url": sys.argv[3]})
        elif action == "eval":
            result = command(sock, 1, "Runtime.evaluate",
                             {"expression": sys.argv[3], "returnByValue": True, "awaitPromise": True})
            if "exceptionDetails" in result:
                raise SystemExit("exception: " + json.dumps(result["exceptionDetails"]))
            print(json.dumps(result["result"].get("value")))
        elif action == "screenshot":
            data = command(sock, 1, "Page.captureScreenshot", {"format": "png"})["data"]
            with open(sys.argv[3], "wb") as f:
                f.write(base64.b64decode(data))
        """#
}
