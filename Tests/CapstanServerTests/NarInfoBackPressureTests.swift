import Foundation
import TestSupport
import Testing

/// A client that pipelines narinfo requests without reading the answers must not make the server
/// buffer answers without bound: the fast path stops answering while the socket is not writable, and
/// the server stops reading that socket. Against the real binary, with a raw socket.
@Suite(.serialized) struct NarInfoBackPressureTests {
    let temp: TemporaryDirectory

    init() throws {
        temp = try TemporaryDirectory("capstan-narinfo-flood")
    }

    /// Sends REQUESTS pipelined narinfo GETs (cycling over PATHS) on one connection without reading,
    /// until everything is sent or the server has taken nothing for 2 s (the server stopped reading).
    /// Meanwhile it samples the server's VmRSS and asks for a narinfo on a second connection. Then it
    /// reads every answer, sending what is left as the server takes it, and checks each in order: 200,
    /// the narinfo of the path asked for, complete. Prints the figures as JSON.
    static let floodScript = #"""
        import json, select, socket, sys, time
        port, pid, total, paths = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
        def rss_kib():
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"): return int(line.split()[1])
        # Padded, so that the requests are far more than the kernel's socket buffers hold.
        def request(path): return f"GET {path} HTTP/1.1\r\nHost: x\r\nX-Padding: {'p' * 200}\r\n\r\n".encode()
        payload = memoryview(b"".join(request(paths[i % len(paths)]) for i in range(total)))
        wanted = [b"StorePath: /nix/store/" + p.rsplit("/", 1)[1][:-len(".narinfo")].encode() for p in paths]
        rss_before = rss_kib()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        s.connect(("127.0.0.1", port))
        s.setblocking(False)
        sent, progress = 0, time.monotonic()
        while sent < len(payload) and time.monotonic() - progress < 2:
            try:
                sent += s.send(payload[sent:sent + (1 << 16)])
                progress = time.monotonic()
            except BlockingIOError:
                select.select([], [s], [], 0.1)
        sent_before_reading = sent
        rss_max = rss_before
        for _ in range(10):
            rss_max = max(rss_max, rss_kib())
            time.sleep(0.2)
        # Another client, meanwhile.
        started = time.monotonic()
        other = socket.create_connection(("127.0.0.1", port))
        other.settimeout(30)
        other.sendall(request(paths[0]))
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = other.recv(1 << 16)
            if not chunk: break
            reply += chunk
        other_seconds = time.monotonic() - started
        other_status = int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0
        other.close()
        rss_max = max(rss_max, rss_kib())
        # Now read everything, in order.
        data, offset, answered, bad = bytearray(), 0, 0, None
        deadline = time.monotonic() + 600
        while answered < total and bad is None and time.monotonic() < deadline:
            readable, writable, _ = select.select([s], [s] if sent < len(payload) else [], [], 30)
            if writable:
                try: sent += s.send(payload[sent:sent + (1 << 16)])
                except BlockingIOError: pass
            if not readable: continue
            chunk = s.recv(1 << 20)
            if not chunk:
                bad = f"closed after {answered} answers"
                break
            data += chunk
            while answered < total:
                end = data.find(b"\r\n\r\n", offset)
                if end < 0: break
                head = bytes(data[offset:end])
                length = next((int(l.split(b":", 1)[1]) for l in head.split(b"\r\n")[1:]
                               if l.lower().startswith(b"content-length:")), -1)
                if len(data) < end + 4 + length: break
                body = bytes(data[end + 4:end + 4 + length])
                if not head.startswith(b"HTTP/1.1 200 ") or not body.startswith(wanted[answered % len(paths)]):
                    bad = f"answer {answered}: {head[:60]!r} {body[:60]!r}"
                    break
                answered += 1
                offset = end + 4 + length
            if offset > (1 << 22):
                del data[:offset]
                offset = 0
        print(json.dumps({
            "sentBeforeReading": sent_before_reading, "payloadBytes": len(payload), "rssBeforeKiB": rss_before,
            "rssMaxKiB": rss_max, "otherSeconds": other_seconds, "otherStatus": other_status,
            "answered": answered, "bad": bad, "leftOver": len(data) - offset}))
        """#

    struct Flood: Decodable {
        var sentBeforeReading: Int
        var payloadBytes: Int
        var rssBeforeKiB: Int
        var rssMaxKiB: Int
        var otherSeconds: Double
        var otherStatus: Int
        var answered: Int
        var bad: String?
        var leftOver: Int
    }

    @Test func aClientThatNeverReadsIsHeldBackNotBuffered() throws {
        let server = try ServerProcess(dataDirectory: temp.sub("data"), arguments: ["--log-level", "warning"])
        defer { server.stop() }
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        _ = try admin.createCache("flood")
        let closure = try NixFixtures.buildClosure(in: temp.path)
        try admin.run(["push", "flood", closure[0]])
        let paths = closure.map { "/cache/flood/\($0.dropFirst("/nix/store/".count).prefix(32)).narinfo" }
        // The route reads each narinfo once; from then on they are memo hits.
        for path in paths { #expect(try HTTP.request("GET", server.url + path).status == 200) }

        // 80,000 requests of about 270 bytes (20 MB, more than the kernel buffers), answers of about 800
        // bytes: some 60 MB if the server kept them all.
        let total = 80_000
        let script = temp.sub("flood.py")
        try Self.floodScript.write(toFile: script, atomically: true, encoding: .utf8)
        let json = String(decoding: try JSONSerialization.data(withJSONObject: paths), as: UTF8.self)
        let result = try ProcessRunner.run(
            [
                "/usr/bin/python3", script, String(server.port), String(server.process.processIdentifier),
                String(total), json,
            ])
        #expect(result.status == 0, "\(result.stderrString)")
        let flood = try JSONDecoder().decode(Flood.self, from: result.stdout)

        // The server stopped taking requests it could not answer...
        #expect(flood.sentBeforeReading < flood.payloadBytes, "the server read every request without being read")
        // ...so its memory stayed within a bound far below what the answers would take.
        let grownMiB = Double(flood.rssMaxKiB - flood.rssBeforeKiB) / 1024
        #expect(grownMiB < 24, "the server grew by \(grownMiB) MiB while its client did not read")
        // Other clients were answered meanwhile.
        #expect(flood.otherStatus == 200)
        #expect(flood.otherSeconds < 5, "another client waited \(flood.otherSeconds) s")
        // Once read, every answer arrived, in order and complete, and nothing more.
        #expect(flood.bad == nil, "\(flood.bad ?? "")")
        #expect(flood.answered == total)
        #expect(flood.leftOver == 0)
    }
}
