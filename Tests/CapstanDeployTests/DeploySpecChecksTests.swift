import CapstanModel
import Foundation
import Testing

/// The fields deploy.json gained for activations: checks, agentChecks, grace, activationTimeout.
@Suite struct DeploySpecChecksTests {
    static let path = "/nix/store/00000000000000000000000000000000-system"

    func parse(_ json: String) throws(DeploySpecError) -> DeploySpec {
        try DeploySpec.parse(Data(json.utf8))
    }

    @Test func checksReachTheirAgentsWithGraceAndTimeout() throws {
        let spec = try parse(
            """
            {"agents": {"web1": "\(Self.path)", "db1": "\(Self.path)"},
             "checks": [{"systemd": "no-failed-units"}],
             "agentChecks": {"web1": [{"http": "http://127.0.0.1:8080/health", "timeout": "5s"},
                                       {"command": ["/bin/probe", "--quick"]}]},
             "grace": "1m30s", "activationTimeout": "5m"}
            """)
        let web = try #require(spec.activation(for: "web1"))
        #expect(
            web.checks == [
                .noFailedUnits, .http(url: "http://127.0.0.1:8080/health", status: 200, timeout: .seconds(5)),
                .command(["/bin/probe", "--quick"], timeout: .seconds(30)),
            ])
        #expect(web.grace == .seconds(90))
        #expect(web.timeout == .seconds(300))
        #expect(spec.activation(for: "db1")?.checks == [.noFailedUnits])
        // What the server stores and the agent reads back.
        let stored = StoredJSON.text(web)
        #expect(StoredJSON.value(ActivationSettings.self, from: stored) == web)
        #expect(stored.contains(#""timeout":"5s""#), "\(stored)")
    }

    @Test func aPlainDeployJSONAsksNothingOfTheActivation() throws {
        let spec = try parse(#"{"agents": {"web1": "\#(Self.path)"}, "rollbackScript": null}"#)
        #expect(spec.activation(for: "web1") == nil)
    }

    @Test(arguments: [
        (#"{"checks": [{"systemd": "all-good"}]}"#, #"checks[0].systemd: "all-good" is unknown"#),
        (#"{"checks": [{"http": "ftp://x/"}]}"#, #"checks[0].http: "ftp://x/" is not an http:// or https:// URL"#),
        (#"{"checks": [{"http": "http://x/", "status": "200"}]}"#, "checks[0].status must be a number"),
        (#"{"checks": [{"command": []}]}"#, "checks[0].command must name a program"),
        (#"{"checks": [{"command": ["/x"], "timout": "3s"}]}"#, #"checks[0]: unknown field "timout""#),
        (#"{"checks": [{"command": ["/x"], "http": "http://x/"}]}"#, "exactly one of"),
        (#"{"checks": [{"command": ["/x"], "timeout": "soon"}]}"#, "checks[0].timeout must be a duration"),
        (#"{"agentChecks": {"web9": []}}"#, #"agentChecks.web9: "agents" names no agent "web9""#),
        (#"{"grace": "forever"}"#, #""grace" must be a duration"#),
        (#"{"activationTimeout": "0s"}"#, #""activationTimeout" must be longer than 0s"#),
        (#"{"check": []}"#, #"unknown field "check""#),
    ])
    func mistakesAreNamed(fields: String, message: String) throws {
        let json = #"{"agents": {"web1": "\#(Self.path)"}, "# + fields.dropFirst()
        do {
            _ = try parse(json)
            Issue.record("accepted \(json)")
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
        }
    }

    @Test(arguments: [
        ("10s", 10_000), ("500ms", 500), ("5m", 300_000), ("1h", 3_600_000), ("1m30s", 90_000), ("2.5", 2_500),
    ])
    func durations(text: String, milliseconds: Int64) throws {
        let span = try #require(TimeSpan(parsing: text))
        #expect(span.duration == .milliseconds(milliseconds))
        #expect(TimeSpan(parsing: span.description) == span, "\(span) reads back")
    }

    @Test func notDurations() {
        // Beyond 64 bits of milliseconds: refused, not a crash.
        for text in ["", "s", "10x", "-5s", "ten seconds", "99999999999999999999d", "1e300", "9999999999999999999999"] {
            #expect(TimeSpan(parsing: text) == nil, "\(text)")
        }
    }
}
