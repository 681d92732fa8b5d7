import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation
import Synchronization

struct DeployActivateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Start the deployments a deploy.json describes and follow them to the end.",
        discussion: """
            The token comes from --token, CAPSTAN_ACTIVATE_TOKEN, CACHIX_ACTIVATE_TOKEN or CAPSTAN_TOKEN \
            (an activate or admin token). Without --async, every agent's log is printed as it runs, \
            prefixed with [agent], and the exit status says how it ended: 0 every deployment succeeded, \
            1 at least one failed or was cancelled, 2 the timeout passed first.
            """
    )

    static let exitFailed: Int32 = 1
    static let exitTimedOut: Int32 = 2

    @OptionGroup var client: ClientOptions
    @Argument(help: "deploy.json ({\"agents\": {NAME: STORE_PATH}}), or - for stdin.") var file: String
    @Option(name: .customLong("agent"), help: "Deploy only to this agent (repeatable).") var agents: [String] = []
    @Flag(name: .customLong("async"), help: "Return once the deployments are accepted.") var async = false
    @Option(help: "Give up waiting after this long, e.g. 90s, 30m, 2h.") var timeout: DurationArgument?
    @Flag(help: "Print a JSON summary on stdout instead of the logs.") var json = false

    func run() async throws {
        let data: Data
        do {
            data =
                file == "-"
                ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw ValidationError("cannot read \(file): \(error.localizedDescription)")
        }
        do {
            _ = try DeploySpec.parse(data, source: file)
        } catch {
            throw ValidationError(error.description)
        }
        let environment = ProcessInfo.processInfo.environment
        let token =
            client.token ?? environment["CAPSTAN_ACTIVATE_TOKEN"] ?? environment["CACHIX_ACTIVATE_TOKEN"]
            ?? environment["CAPSTAN_TOKEN"]
        let api = CapstanAPIClient(baseURL: client.resolvedURL, token: token)
        let response = try await api.activate(deployJSON: data, agents: agents)
        let started = response.agents.sorted { $0.key < $1.key }
        if !json {
            for (agent, created) in started {
                Output.line("\(agent): deployment #\(created.index) \(created.url)")
            }
        }
        if async {
            if json { try printJSON(response) }
            return
        }
        let outcome = try await follow(api: api, deployments: started.map { ($0.key, $0.value.id) })
        if json {
            try printJSON(outcome.deployments)
        } else {
            Output.line("")
            Output.line(summary(outcome.deployments, timedOut: outcome.timedOut))
        }
        if !outcome.timedOut.isEmpty { throw ExitCode(Self.exitTimedOut) }
        let failedCheck = outcome.deployments.contains { ($0.checks ?? []).contains { !$0.passed } }
        if failedCheck || outcome.deployments.contains(where: { $0.status != .succeeded }) {
            throw ExitCode(Self.exitFailed)
        }
    }

    struct FollowOutcome {
        var deployments: [DeploymentInfo]
        var timedOut: [String]
    }

    /// Follows every deployment at once; a line each minute names those still waiting.
    private func follow(api: CapstanAPIClient, deployments: [(agent: String, id: String)]) async throws -> FollowOutcome
    {
        let finished = FinishedDeployments()
        let deadline = timeout.map { ContinuousClock.now + $0.duration }
        let quiet = json
        await withTaskGroup(of: Void.self) { group in
            for (agent, id) in deployments {
                group.addTask {
                    var attempt = 0
                    while !Task.isCancelled {
                        do {
                            for try await item in api.followLog(id: id) {
                                if let line = item.line, !quiet { Output.line("[\(agent)] \(line.line)") }
                                if let end = item.end {
                                    finished.results.withLock { $0[agent] = end }
                                    return
                                }
                            }
                        } catch {
                            attempt += 1
                            if !quiet { printError("[\(agent)] lost the log stream (\(error)); reconnecting") }
                        }
                        // The server may be restarting: try again, more slowly each time.
                        try? await Task.sleep(for: .seconds(min(30, 1 << min(attempt, 5))))
                    }
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(60))
                    let waiting = deployments.map(\.agent).filter { agent in
                        finished.results.withLock { $0[agent] == nil }
                    }
                    if waiting.isEmpty || Task.isCancelled { return }
                    let online = Dictionary(
                        ((try? await api.agents()) ?? []).map { ($0.name, $0.online) }, uniquingKeysWith: { a, _ in a })
                    let names = waiting.map { "\($0) (\(online[$0] == true ? "online" : "offline"))" }
                    if !quiet { printError("still waiting for: " + names.joined(separator: ", ")) }
                }
            }
            if let deadline {
                group.addTask {
                    try? await Task.sleep(until: deadline)
                }
            }
            // Done when every deployment finished, or the deadline passed.
            while await group.next() != nil {
                let done = finished.results.withLock { $0.count } == deployments.count
                if done { break }
                if let deadline, ContinuousClock.now >= deadline { break }
            }
            group.cancelAll()
        }
        var results: [DeploymentInfo] = []
        var timedOut: [String] = []
        for (agent, id) in deployments {
            if let end = finished.results.withLock({ $0[agent] }) {
                results.append(end)
            } else {
                timedOut.append(agent)
                if let current = try? await api.deployment(id: id) { results.append(current) }
            }
        }
        return FollowOutcome(deployments: results, timedOut: timedOut)
    }

    private func summary(_ deployments: [DeploymentInfo], timedOut: [String]) -> String {
        let rows = deployments.map { deployment -> [String] in
            let duration: String
            if let start = deployment.startedOn, let end = deployment.finishedOn {
                duration = String(format: "%.0fs", end.timeIntervalSince(start))
            } else {
                duration = "-"
            }
            var status = deployment.status.rawValue
            if timedOut.contains(deployment.agent) { status += " (timed out waiting)" }
            if deployment.rolledBack { status += ", rolled back" }
            return [
                "\(deployment.agent)", "#\(deployment.index)", status, duration, checks(deployment.checks),
                deployment.reason ?? "",
            ]
        }
        return TextTable.render(header: ["AGENT", "DEPLOYMENT", "STATUS", "TIME", "CHECKS", "REASON"], rows: rows)
    }

    /// `http http://…: passed; command /bin/probe: FAILED (3 attempts)`, or `-` without checks.
    private func checks(_ results: [CheckResult]?) -> String {
        guard let results, !results.isEmpty else { return "-" }
        return results.map { result in
            "\(result.check): " + (result.passed ? "passed" : "FAILED (\(result.attempts) attempts)")
        }.joined(separator: "; ")
    }
}

/// A duration given on the command line: `90s`, `30m`, `2h`, `1m30s`, `500ms` or plain seconds; more than zero.
struct DurationArgument: ExpressibleByArgument {
    var duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        guard let span = TimeSpan(parsing: argument), span.duration > .zero else { return nil }
        duration = span.duration
    }

    var defaultValueDescription: String { TimeSpan(duration).description }
}

/// Unbuffered lines on stdout, so a follower sees them as they happen even through a pipe.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

/// Deployments that reached a final state, shared by the follower tasks.
final class FinishedDeployments: Sendable {
    let results = Mutex<[String: DeploymentInfo]>([:])
}
