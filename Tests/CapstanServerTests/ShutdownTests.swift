import Foundation
import TestSupport
import Testing

/// SIGTERM with many agents connected: the server closes them all at once and stops within seconds.
@Suite(.serialized) struct ShutdownTests {
    static let agents = 1000

    @Test func sigtermWithAThousandAgentsStopsWithinSeconds() throws {
        let temp = try TemporaryDirectory("capstan-shutdown")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Benchmarks/agent_hold.py").path
        let holder = Process()
        // Debian's Python carries the websockets package (python3-websockets).
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        holder.arguments = [
            script, "--port", String(server.port), "--admin-token", try server.adminToken, "--agents",
            String(Self.agents), "--wait", "60",
        ]
        let output = Pipe()
        let errors = temp.sub("holder.err")
        FileManager.default.createFile(atPath: errors, contents: nil)
        holder.standardOutput = output
        holder.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errors))
        try holder.run()
        defer {
            if holder.isRunning {
                kill(holder.processIdentifier, SIGKILL)
                holder.waitUntilExit()
            }
        }
        let reader = output.fileHandleForReading
        var line = ""
        while !line.contains("\n"), let byte = try reader.read(upToCount: 1), !byte.isEmpty {
            line += String(decoding: byte, as: UTF8.self)
        }
        let log = { (try? String(contentsOfFile: errors, encoding: .utf8)) ?? "" }
        try #require(line == "connected \(Self.agents)\n", "\(line)\(log())")

        let start = Date()
        kill(server.process.processIdentifier, SIGTERM)
        while server.process.isRunning && Date().timeIntervalSince(start) < 60 {
            Thread.sleep(forTimeInterval: 0.05)
        }
        let stoppedAfter = Date().timeIntervalSince(start)
        #expect(!server.process.isRunning)
        #expect(stoppedAfter < 5, "stopped after \(stoppedAfter) s")
        #expect(server.process.terminationStatus == 0, "\(server.log.suffix(2000))")

        holder.waitUntilExit()
        let rest = String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
        #expect(rest.hasPrefix("closed \(Self.agents) "), "\(rest)\(log())")
    }
}
