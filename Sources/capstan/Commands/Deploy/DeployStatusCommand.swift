import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

/// Shared token lookup of the deploy commands: activate token first, then the general one.
extension ClientOptions {
    func makeDeployClient() -> CapstanAPIClient {
        let environment = ProcessInfo.processInfo.environment
        let token =
            token ?? environment["CAPSTAN_ACTIVATE_TOKEN"] ?? environment["CACHIX_ACTIVATE_TOKEN"]
            ?? environment["CAPSTAN_TOKEN"]
        return CapstanAPIClient(baseURL: resolvedURL, token: token)
    }
}

func describe(_ deployment: DeploymentInfo) -> String {
    var lines = [
        "deployment:  \(deployment.id) (#\(deployment.index))",
        "agent:       \(deployment.agent)",
        "store path:  \(deployment.storePath)",
        "status:      \(deployment.status.rawValue)\(deployment.rolledBack ? ", rolled back" : "")",
    ]
    if let reason = deployment.reason { lines.append("reason:      \(reason)") }
    let formatter = ISO8601DateFormatter()
    lines.append("created:     \(formatter.string(from: deployment.createdOn))")
    if let started = deployment.startedOn { lines.append("started:     \(formatter.string(from: started))") }
    if let finished = deployment.finishedOn { lines.append("finished:    \(formatter.string(from: finished))") }
    if let size = deployment.closureSize { lines.append("closure:     \(ByteFormat.string(size))") }
    for result in deployment.checks ?? [] {
        let attempts = "\(result.attempts) attempt\(result.attempts == 1 ? "" : "s")"
        lines.append("check:       \(result.check): \(result.passed ? "passed" : "FAILED") (\(attempts))")
        lines += result.output.map { "               \($0)" }
    }
    lines.append("url:         \(deployment.url)")
    return lines.joined(separator: "\n")
}

struct DeployStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a deployment: status, reason, timeline.")

    @OptionGroup var client: ClientOptions
    @Argument(help: "Deployment id.") var id: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let deployment = try await client.makeDeployClient().deployment(id: id)
        if json { return try printJSON(deployment) }
        print(describe(deployment))
    }
}
