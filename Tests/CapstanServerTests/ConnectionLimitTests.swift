import Foundation
import TestSupport
import Testing

/// Slow and silent clients against a server with few descriptors: they must not keep it from
/// answering, nor hold their connections forever.
@Suite(.serialized) struct ConnectionLimitTests {
    let temp: TemporaryDirectory

    init() throws {
        temp = try TemporaryDirectory("capstan-connections")
    }

    /// A client of the test's own, in Python: `hold` opens COUNT connections that each send half a
    /// request and prints `held N`, then waits for the server to close them and prints `closed N
    /// SECONDS` (how many were closed, and when the last was); `big` sends request headers of SIZE
    /// bytes, first on a new connection, then after a good request on a kept-alive one, and prints
    /// what came back; `idle` sends one request, keeps the connection open and prints when the
    /// server closed it.
    static let client = """
        import select, socket, sys, time
        mode, port = sys.argv[1], int(sys.argv[2])

        def connect():
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
            return s

        def closed(s, timeout):
            # The server closed it: readable, and reads end (or fail with a reset).
            r, _, _ = select.select([s], [], [], timeout)
            if not r:
                return False
            try:
                return s.recv(65536) == b""
            except OSError:
                return True

        def answer(s):
            data = b""
            try:
                while b"\\r\\n\\r\\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError:
                pass
            return data.split(b"\\r\\n", 1)[0].decode() or "closed"

        if mode == "hold":
            count, wait = int(sys.argv[3]), float(sys.argv[4])
            held = []
            for _ in range(count):
                try:
                    s = connect()
                    s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: ")
                    held.append(s)
                except OSError:
                    pass
            print("held", len(held), flush=True)
            start, last, open_ = time.time(), 0.0, list(held)
            while open_ and time.time() - start < wait:
                r, _, _ = select.select(open_, [], [], 0.5)
                for s in r:
                    if closed(s, 0):
                        open_.remove(s)
                        last = time.time() - start
            print("closed", len(held) - len(open_), "%.1f" % last, flush=True)
        elif mode == "keepalive":
            count, wait = int(sys.argv[3]), float(sys.argv[4])
            held = []
            for _ in range(count):
                s = connect()
                s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
                if answer(s).startswith("HTTP/1.1 200"):
                    held.append(s)
            print("held", len(held), flush=True)
            time.sleep(wait)
            print("closed", sum(1 for s in held if closed(s, 0)), flush=True)
        elif mode == "big":
            size = int(sys.argv[3])
            s = connect()
            s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Big: " + b"a" * size + b"\\r\\n\\r\\n")
            print("first", answer(s), "closed" if closed(s, 5) else "open", flush=True)
            s = connect()
            s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            print("good", answer(s), flush=True)
            try:
                s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Big: " + b"a" * size + b"\\r\\n\\r\\n")
            except OSError:
                pass
            print("later", answer(s), "closed" if closed(s, 5) else "open", flush=True)
        elif mode == "idle":
            s = connect()
            s.sendall(b"GET /health HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n")
            print("answer", answer(s), flush=True)
            start = time.time()
            gone = closed(s, float(sys.argv[3]))
            print("closed" if gone else "open", "%.1f" % (time.time() - start), flush=True)
        """

    func clientScript() throws -> String {
        let path = temp.sub("client.py")
        if !FileManager.default.fileExists(atPath: path) {
            try Self.client.write(toFile: path, atomically: true, encoding: .utf8)
        }
        return path
    }

    /// `/health` within `seconds`, by curl.
    func healthAnswers(_ server: ServerProcess, within seconds: Int = 3) throws -> Bool {
        let result = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "\(seconds)", "\(server.url)/health",
        ])
        return result.stdoutString == "200"
    }

    /// The attack: with 256 descriptors, 300 connections that send half a request made the
    /// server stop answering. Now the server keeps answering while they are held, and closes them all
    /// once the header timeout has passed.
    @Test func halfSentRequestsNeitherStarveTheServerNorLinger() throws {
        let server = try ServerProcess(
            dataDirectory: temp.sub("slowloris"), environment: ["CAPSTAN_HTTP_HEADER_TIMEOUT_SECONDS": "3"],
            descriptorLimit: 256)
        #expect(server.log.contains("connections at most"), "\(server.log)")

        let attacker = try HelperProcess(
            ["/usr/bin/python3", try clientScript(), "hold", String(server.port), "300", "20"],
            errorPath: temp.sub("attacker.err"))
        let text = try attacker.readLine() ?? ""
        #expect(text.hasPrefix("held "), "\(text)\(attacker.errors)")
        let held = Int(text.split(separator: " ").last ?? "") ?? 0
        #expect(held >= 250, "the attacker opened only \(held) connections")

        // While they are held, the server answers, every time.
        for _ in 0..<5 {
            #expect(try healthAnswers(server), "\(server.log.suffix(2000))")
        }
        let rest = attacker.finish()
        let words = rest.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(words.first == "closed", "\(rest)")
        // Every half-sent request was closed: made room for others, or timed out after 3 s.
        #expect(words.count == 3 && Int(words[1]) == held, "\(rest)")
        #expect((Double(words.count == 3 ? words[2] : "99") ?? 99) < 10, "\(rest)")
        #expect(try healthAnswers(server))
        server.stop()
    }

    /// Connections kept alive between requests count as idle too: over the cap, the oldest of them
    /// make room for new clients.
    @Test func keptAliveConnectionsMakeRoomOverTheCap() throws {
        let server = try ServerProcess(
            dataDirectory: temp.sub("keepalive"), environment: ["CAPSTAN_MAX_CONNECTIONS": "20"])
        let client = try HelperProcess(
            ["/usr/bin/python3", try clientScript(), "keepalive", String(server.port), "30", "3"],
            errorPath: temp.sub("keepalive.err"))
        #expect(try client.readLine() == "held 30", "\(client.errors)")
        #expect(try healthAnswers(server))
        let closed = client.finish().split(separator: " ").last.flatMap {
            Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        // 31 clients for 20 places: at least 11 of the kept-alive ones were closed for newer ones.
        #expect((closed ?? 0) >= 11, "closed \(closed ?? -1)")
        server.stop()
    }

    /// Headers of 80 KB: answered 431 and closed, on a new connection and on a kept-alive one.
    @Test func oversizedHeadersAreAnswered431() throws {
        let server = try ServerProcess(dataDirectory: temp.sub("headers"))
        let result = try ProcessRunner.run(["python3", try clientScript(), "big", String(server.port), "81920"])
        let lines = result.stdoutString.split(separator: "\n").map(String.init)
        #expect(lines.count == 3, "\(result.stdoutString)\(result.stderrString)")
        #expect(lines.first == "first HTTP/1.1 431 Request Header Fields Too Large closed", "\(lines)")
        #expect(lines.dropFirst().first == "good HTTP/1.1 200 OK", "\(lines)")
        #expect(lines.last == "later HTTP/1.1 431 Request Header Fields Too Large closed", "\(lines)")
        #expect(try healthAnswers(server))
        server.stop()
    }

    /// A kept-alive connection with nothing in flight is closed after the idle timeout.
    @Test func idleConnectionsAreClosed() throws {
        let server = try ServerProcess(
            dataDirectory: temp.sub("idle"), environment: ["CAPSTAN_HTTP_IDLE_TIMEOUT_SECONDS": "2"])
        let result = try ProcessRunner.run(["python3", try clientScript(), "idle", String(server.port), "10"])
        let lines = result.stdoutString.split(separator: "\n").map(String.init)
        #expect(lines.first == "answer HTTP/1.1 200 OK", "\(result.stdoutString)\(result.stderrString)")
        let last = lines.last?.split(separator: " ") ?? []
        #expect(last.first == "closed", "\(lines)")
        #expect((Double(last.last ?? "99") ?? 99) < 5, "\(lines)")
        server.stop()
    }
}
