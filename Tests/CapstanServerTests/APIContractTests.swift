import Foundation
import TestSupport
import Testing

/// The API's contract, `docs/openapi.yaml`, served at `/api/v1/openapi.yaml`, held against the
/// running server by schemathesis: requests generated from the document (valid and not), with an
/// admin token; every response must match the document, and none may be a server error.
@Suite(.serialized) struct APIContractTests {
    static var schemathesis: String? {
        let found = try? ProcessRunner.run(["sh", "-c", "command -v schemathesis"])
        guard let found, found.status == 0 else { return nil }
        return found.stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test func servedDocumentIsTheOneInDocs() throws {
        let temp = try TemporaryDirectory("capstan-openapi")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let served = try HTTP.request("GET", "\(server.url)/api/v1/openapi.yaml")
        #expect(served.status == 200)
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/openapi.yaml")
        #expect(served.body == (try Data(contentsOf: docs)))
        server.stop()
    }

    @Test(.enabled(if: schemathesis != nil, "schemathesis is missing: scripts/test installs it"))
    func everyResponseMatchesTheDocument() throws {
        let temp = try TemporaryDirectory("capstan-contract")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let token = try server.adminToken
        // What the document's examples name: cache `main`, agent `web1`.
        let admin = CapstanCLI(url: server.url, token: token)
        _ = try admin.createCache("main")
        try admin.run(["agent", "create", "web1"])
        let report = temp.sub("report")
        func schemathesis(_ selection: [String], phases: String) throws -> ProcessResult {
            try ProcessRunner.run(
                [
                    try #require(Self.schemathesis), "run", "\(server.url)/api/v1/openapi.yaml",
                    "--header", "Authorization: Bearer \(token)",
                    "--checks",
                    "not_a_server_error,status_code_conformance,content_type_conformance,"
                        + "response_headers_conformance,response_schema_conformance",
                    "--phases", phases, "--max-examples", "40", "--workers", "1", "--request-timeout", "10",
                    "--seed", "1", "--generation-database", "none", "--report", "junit", "--report-dir", report,
                    "--no-color",
                ] + selection,
                environment: ProcessInfo.processInfo.environment.merging(["SCHEMATHESIS_TELEMETRY": "false"]) { $1 },
                // It keeps a cache (.schemathesis/) in its working directory: the test's, not the repository.
                currentDirectory: temp.path)
        }
        // One worker: with two, schemathesis once failed inside Python's ast module ("AST constructor
        // recursion depth mismatch"), a fault of the tool rather than a finding about the server.
        // Everything but revoking tokens, which would soon revoke the token the run uses…
        let result = try schemathesis(
            ["--exclude-operation-id", "revokeToken", "--exclude-operation-id", "followDeploymentLog"],
            phases: "examples,coverage,fuzzing,stateful")
        #expect(result.status == 0, "\(result.stdoutString.suffix(20000))\(result.stderrString.suffix(4000))")
        #expect(result.stdoutString.contains(" passed"), "\(result.stdoutString.suffix(2000))")
        // Following a log lasts as long as its deployment, and the run's deployments stay pending (no agent
        // connects): the stateful phase, which follows the deployments it creates, would only time out.
        let following = try schemathesis(
            ["--include-operation-id", "followDeploymentLog"], phases: "examples,coverage,fuzzing")
        #expect(following.status == 0, "\(following.stdoutString.suffix(20000))\(following.stderrString.suffix(4000))")
        // …which comes last.
        let revoking = try schemathesis(["--include-operation-id", "revokeToken"], phases: "examples,coverage,fuzzing")
        #expect(revoking.status == 0, "\(revoking.stdoutString.suffix(20000))\(revoking.stderrString.suffix(4000))")
        // The server survived it.
        #expect(try HTTP.request("GET", "\(server.url)/health").status == 200)
        server.stop()
    }
}
