import Foundation
import NixCore
import TestSupport
import Testing

/// NARs of the filesystem blob store are sent from their files (sendfile): whole, ranged, HEAD,
/// several on one connection and pipelined, byte for byte what is stored; a client that goes away
/// mid-download leaves no file open in the server.
@Suite(.serialized) struct NarDownloadTests {
    let temp: TemporaryDirectory
    let server: ServerProcess
    let admin: CapstanCLI

    init() throws {
        temp = try TemporaryDirectory("capstan-nar-download")
        server = try ServerProcess(dataDirectory: temp.sub("data"))
        admin = CapstanCLI(url: server.url, token: try server.adminToken)
    }

    /// Pushes a fresh closure whose largest path holds `payloadBytes` of random bytes; returns the
    /// URL path of that path's NAR and the blob file the server stores it in.
    func pushedNar(cache: String, payloadBytes: Int, admin: CapstanCLI? = nil, server: ServerProcess? = nil) throws
        -> (path: String, file: String)
    {
        let admin = admin ?? self.admin
        let server = server ?? self.server
        _ = try admin.createCache(cache)
        let closure = try NixFixtures.buildClosure(in: temp.path, payloadBytes: payloadBytes)
        try admin.run(["push", cache, closure[0]])
        let hashPart = String(closure[2].dropFirst("/nix/store/".count).prefix(32))
        let info = try NarInfo(
            parsing: try HTTP.request("GET", "\(server.url)/cache/\(cache)/\(hashPart).narinfo").text)
        let file = server.dataDirectory + "/blobs/" + info.url
        #expect(FileManager.default.fileExists(atPath: file), "no blob at \(file)")
        return ("/cache/\(cache)/\(info.url)", file)
    }

    @Test func wholeRangedAndHeadRequestsShareOneConnection() throws {
        let nar = try pushedNar(cache: "sendfile", payloadBytes: 3_000_000)
        let stored = try Data(contentsOf: URL(fileURLWithPath: nar.file))
        let url = server.url + nar.path
        let out = temp.sub("out")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        // One curl, several transfers: curl keeps the connection (num_connects 0 after the first).
        let transfers: [(name: String, options: [String])] = [
            ("whole", []), ("middle", ["-r", "10-99"]), ("from", ["-r", "1000000-"]), ("suffix", ["-r", "-16"]),
            ("head", ["-I"]), ("again", []),
        ]
        var arguments = ["curl"]
        for (index, transfer) in transfers.enumerated() {
            if index > 0 { arguments.append("--next") }
            arguments += ["-s", "-w", "%{http_code} %{num_connects}\\n", "-o", out + "/" + transfer.name]
            arguments += transfer.options + [url]
        }
        let lines = try ProcessRunner.run(arguments, check: true).stdoutString.split(separator: "\n")
        #expect(lines == ["200 1", "206 0", "206 0", "206 0", "200 0", "200 0"], "\(lines)")
        func body(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: out + "/" + name)) }
        #expect(try body("whole") == stored)
        #expect(try body("middle") == stored.subdata(in: 10..<100))
        #expect(try body("from") == stored.subdata(in: 1_000_000..<stored.count))
        #expect(try body("suffix") == stored.suffix(16))
        #expect(try body("again") == stored)
        let head = String(decoding: try body("head"), as: UTF8.self).lowercased()
        #expect(head.contains("content-length: \(stored.count)\r\n"), "\(head)")
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let nar = try pushedNar(cache: "pipelined", payloadBytes: 2_000_000)
        let stored = try Data(contentsOf: URL(fileURLWithPath: nar.file))
        let out = temp.sub("pipelined")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let script = temp.sub("pipeline.py")
        try Self.pipelineScript.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try ProcessRunner.run(
            ["/usr/bin/python3", script, String(server.port), nar.path, out], check: true)
        let lines = result.stdoutString.split(separator: "\n")
        #expect(lines == ["0 206", "1 200", "2 200", "3 206"], "\(lines) \(result.stderrString)")
        func body(_ index: Int) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: "\(out)/\(index)")) }
        #expect(try body(0) == stored.subdata(in: 5..<50_005))
        #expect(try body(1) == Data(), "a HEAD answer has no body")
        #expect(try body(2) == stored)
        #expect(try body(3) == stored.suffix(100))
    }

    @Test func abortedDownloadsLeaveNoFileOpen() throws {
        // Larger than loopback's socket buffers, so every download is still sending when cut.
        let nar = try pushedNar(cache: "aborted", payloadBytes: 40_000_000)
        let pid = server.process.processIdentifier
        let idle = try Self.openDescriptors(of: pid)
        let script = temp.sub("abort.py")
        try Self.abortScript.write(toFile: script, atomically: true, encoding: .utf8)
        let clients = 24
        let result = try ProcessRunner.run(
            ["/usr/bin/python3", script, String(server.port), nar.path, String(pid), String(clients)], check: true)
        // While the clients hang, the server holds each one's NAR open: the test sees real downloads.
        #expect(result.stdoutString == "held \(clients)\n", "\(result.stdoutString) \(result.stderrString)")
        let deadline = Date().addingTimeInterval(20)
        var now = try Self.openDescriptors(of: pid)
        while (now.count > idle.count || now.contains { $0.contains("/blobs/") }) && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.1)
            now = try Self.openDescriptors(of: pid)
        }
        #expect(!now.contains { $0.contains("/blobs/") }, "\(now)")
        #expect(now.count <= idle.count, "idle \(idle), now \(now)")
        // The server still serves whole downloads afterwards.
        let after = try HTTP.request("GET", server.url + nar.path)
        #expect(after.body == (try Data(contentsOf: URL(fileURLWithPath: nar.file))))
    }

    /// A download that outlasts the idle timeout is not idle: the response ends only after the kernel
    /// took the file's last byte, so a slow client gets every byte.
    @Test func slowDownloadOutlastsTheIdleTimeout() throws {
        let slow = try ServerProcess(
            dataDirectory: temp.sub("slow"), environment: ["CAPSTAN_HTTP_IDLE_TIMEOUT_SECONDS": "1"])
        defer { slow.stop() }
        let nar = try pushedNar(
            cache: "slow", payloadBytes: 24_000_000, admin: CapstanCLI(url: slow.url, token: try slow.adminToken),
            server: slow)
        let script = temp.sub("slow.py")
        try Self.slowReaderScript.write(toFile: script, atomically: true, encoding: .utf8)
        let out = temp.sub("slow.nar")
        let started = Date()
        let result = try ProcessRunner.run(["/usr/bin/python3", script, String(slow.port), nar.path, out])
        #expect(result.status == 0, "\(result.stderrString)")
        #expect(Date().timeIntervalSince(started) > 2, "the reader was not slower than the idle timeout")
        #expect(
            (try? Data(contentsOf: URL(fileURLWithPath: out))) == (try Data(contentsOf: URL(fileURLWithPath: nar.file)))
        )
    }

    /// What the descriptors of process `pid` point to.
    static func openDescriptors(of pid: Int32) throws -> [String] {
        let directory = "/proc/\(pid)/fd"
        return try FileManager.default.contentsOfDirectory(atPath: directory).map {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + $0)) ?? "?"
        }
    }

    /// Sends four requests in one write (a range, HEAD, whole, a suffix with `Connection: close`), then
    /// reads the answers in order, writing each body to OUT/<index> and printing `index status`.
    static let pipelineScript = #"""
        import socket, sys
        port, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        requests = [("GET", "Range: bytes=5-50004\r\n"), ("HEAD", ""), ("GET", ""),
                    ("GET", "Range: bytes=-100\r\nConnection: close\r\n")]
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"".join(f"{m} {path} HTTP/1.1\r\nHost: x\r\n{h}\r\n".encode() for m, h in requests))
        data = b""
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        for index, (method, _) in enumerate(requests):
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            fields = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
            length = 0 if method == "HEAD" else int(fields["content-length"])
            open(f"{out}/{index}", "wb").write(data[:length])
            data = data[length:]
            print(index, lines[0].split(" ")[1])
        if data:
            sys.exit(f"{len(data)} bytes after the last answer")
        """#

    /// Downloads PATH through a small receive buffer, pausing 0.1 s after every MiB (over 2 s for
    /// 24 MB), and writes the body to OUT; fails when the server closes early.
    static let slowReaderScript = #"""
        import socket, sys, time
        port, path, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
        chunks, received, mark = [body], len(body), 0
        while received < length:
            chunk = s.recv(65536)
            if not chunk:
                sys.exit(f"closed after {received} of {length} bytes")
            chunks.append(chunk)
            received += len(chunk)
            if received // (1 << 20) > mark:
                mark = received // (1 << 20)
                time.sleep(0.1)
        open(out, "wb").write(b"".join(chunks))
        """#

    /// Starts N downloads that read 64 KiB and stop, prints `held K` (how many NAR files the server
    /// then has open), and resets every connection.
    static let abortScript = #"""
        import os, socket, struct, sys, time
        port, path, pid, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
        def target(fd):
            try:
                return os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                return ""
        sockets = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = 0
            while received < 65536:
                received += len(s.recv(65536))
            sockets.append(s)
        held = 0
        for _ in range(100):
            time.sleep(0.1)
            held = sum("/blobs/" in target(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
            if held >= count:
                break
        print("held", held, flush=True)
        for s in sockets:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        """#
}
