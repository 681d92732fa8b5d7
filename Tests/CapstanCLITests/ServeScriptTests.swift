import Foundation
import TestSupport
import Testing

/// The checkout this test file belongs to: scripts/serve is the README's first command.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

@Test("scripts/serve runs the server on the embedded SQLite default until SIGTERM ends it")
func serveScriptRunsTheServer() throws {
    let dir = try TemporaryDirectory()
    let port = try FreePort.find()
    let dataDirectory = dir.sub("data")
    var environment = ProcessInfo.processInfo.environment
    environment["CAPSTAN_BIN"] = TestEnvironment.capstanBinary
    let server = try SignalableProcess(
        ["\(repositoryRoot)/scripts/serve", "--data-dir", dataDirectory, "--listen", "127.0.0.1:\(port)"],
        environment: environment, logPath: dir.sub("serve.log"))
    let log = { (try? String(contentsOfFile: dir.sub("serve.log"), encoding: .utf8)) ?? "" }

    let deadline = Date().addingTimeInterval(60)
    var healthy = false
    while !healthy && Date() < deadline && server.isRunning {
        healthy =
            try ProcessRunner.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/health"]).status == 0
        if !healthy { usleep(100_000) }
    }
    try #require(healthy, "no /health answer from scripts/serve: \(log())")
    #expect(log().contains("Admin token"), "the first start prints the admin token")
    #expect(FileManager.default.fileExists(atPath: dataDirectory + "/admin-token"))
    #expect(
        FileManager.default.fileExists(atPath: dataDirectory + "/capstan.sqlite"),
        "the embedded SQLite database is in the data directory")

    server.signal(SIGTERM)
    let status = try #require(server.waitForExit(timeout: 30), "still running 30 s after SIGTERM: \(log())")
    #expect(WaitStatus.exitCode(status) == 0, "exit status \(status) after SIGTERM: \(log())")
    #expect(try ProcessRunner.run(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/health"]).status != 0)
}

/// Runs `body` (bash) with scripts/lib/packages.sh sourced and stub `pkg-config`, `apt-get` and `id`
/// first on PATH: a fresh Debian machine without the zstd and xz headers, as root or not.
private func withFreshMachine(root: Bool, _ body: String) throws -> (result: ProcessResult, aptCalls: String) {
    let dir = try TemporaryDirectory()
    let stubs = dir.sub("bin")
    try FileManager.default.createDirectory(atPath: stubs, withIntermediateDirectories: true)
    let scripts = [
        "pkg-config": "exit 1",
        "apt-get": "echo \"apt-get $*\" >> \(dir.sub("apt-calls"))",
        "id": "echo \(root ? 0 : 1000)",
    ]
    for (name, script) in scripts {
        try Data("#!/bin/sh\n\(script)\n".utf8).write(to: URL(fileURLWithPath: "\(stubs)/\(name)"))
        chmod("\(stubs)/\(name)", 0o755)
    }
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = "\(stubs):/usr/bin:/bin"
    let result = try ProcessRunner.run(
        ["/bin/bash", "-c", "set -euo pipefail; source \(repositoryRoot)/scripts/lib/packages.sh; \(body)"],
        environment: environment)
    let calls = (try? String(contentsOfFile: dir.sub("apt-calls"), encoding: .utf8)) ?? ""
    return (result, calls)
}

@Test("On a machine without the zstd and xz headers, scripts/serve's package step installs them (as root)")
func serverPackagesAreInstalledWhenMissing() throws {
    let (result, calls) = try withFreshMachine(
        root: true, "capstan_need_server_packages; capstan_install_missing scripts/serve; echo installed")
    #expect(result.status == 0, "\(result.stderrString)")
    #expect(result.stdoutString.contains("installed"))
    #expect(calls.contains("apt-get update"))
    #expect(calls.contains("install -y -qq --no-install-recommends libzstd-dev liblzma-dev"), "\(calls)")
}

@Test("Without root, the package step names what to install and fails")
func missingPackagesAreNamedWithoutRoot() throws {
    let (result, calls) = try withFreshMachine(
        root: false, "capstan_need_server_packages; capstan_install_missing scripts/serve; echo continued")
    #expect(result.status == 1)
    #expect(!result.stdoutString.contains("continued"))
    #expect(result.stderrString.contains("scripts/serve: missing libzstd-dev liblzma-dev"), "\(result.stderrString)")
    #expect(result.stderrString.contains("apt-get install libzstd-dev liblzma-dev"))
    #expect(calls.isEmpty, "nothing is installed without root")
}
