import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct DeployActivateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate",
        abstract: "Start the deployments a deploy.json describes and follow them to the end.",
        discussion: """
            The token comes from --token, CAPSTAN_ACTIVATE_TOKEN, CACHIX_ACTIVATE_TOKEN or CAPSTAN_TOKEN \
            (an activate or admin token). Without --async, every agent's log is printed as it runs, \
            prefixed with [agent], and the exit status says how it ended: 0 every deployment succeeded, \
            1 at least one failed or was cancelled (or the rollout stopped), 2 the timeout passed first.

            With --wave (or a "rollout" in the deploy.json) the agents are deployed in waves: a wave starts \
            once every deployment of the wave before succeeded and the --pause passed; agents no wave names \
            form a last wave. More failures than --max-failures stop the rollout and cancel what has not started.
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
    @Option(
        name: .customLong("wave"),
        help: "Deploy in waves: the agents of one wave, comma-separated (repeatable, in order).")
    var waves: [String] = []
    @Option(help: "Failed deployments a rollout tolerates before it stops (default 0).") var maxFailures: Int?
    @Option(help: "Pause between the waves of a rollout, e.g. 30s, 5m.") var pause: String?

    func run() async throws {
        var data = try readDeployJSON(file)
        do {
            data = try withRolloutFlags(data)
            _ = try DeploySpec.parse(data, source: file)
        } catch let error as DeploySpecError {
            throw ValidationError(error.description)
        }
        let environment = ProcessInfo.processInfo.environment
        let token =
            client.token ?? environment["CAPSTAN_ACTIVATE_TOKEN"] ?? environment["CACHIX_ACTIVATE_TOKEN"]
            ?? environment["CAPSTAN_TOKEN"]
        let api = CapstanAPIClient(baseURL: client.resolvedURL, token: token)
        if !json {
            // What each agent is about to download and change; the deploy goes ahead without it.
            do {
                for agent in try await api.preview(deployJSON: data, agents: agents).agents {
                    Output.line(DeployDiffCommand.summary(agent))
                }
            } catch {
                printError("no preview of the changes: \(error)")
            }
        }
        let response = try await api.activate(deployJSON: data, agents: agents)
        let started = response.agents.sorted { $0.key < $1.key }
        if !json {
            for (agent, created) in started {
                Output.line("\(agent): deployment #\(created.index) \(created.url)")
            }
            if let rollout = response.rollout {
                Output.line("rollout \(rollout.id) \(rollout.url)")
                for (index, wave) in rollout.waves.enumerated() {
                    Output.line("  wave \(index + 1): \(wave.joined(separator: ", "))")
                }
            }
        }
        if async {
            if json { try printJSON(response) }
            return
        }
        let quiet = json
        // Says when the rollout moves: a wave scheduled after its pause, started, paused, ended.
        let rolloutWatch = Task {
            guard !quiet, let id = response.rollout?.id else { return }
            var said = ""
            while !Task.isCancelled {
                if let rollout = try? await api.rollout(id: id) {
                    let news = Self.progress(rollout)
                    if news != said { Output.line(news) }
                    said = news
                    if rollout.state.isFinal { return }
                }
                try? await Task.sleep(for: .seconds(2))
            }
        }
        defer { rolloutWatch.cancel() }
        let outcome = await DeploymentFollower(api: api).follow(
            started.map { ($0.key, $0.value.id) }, timeout: timeout?.duration
        ) { event in
            guard !quiet else { return }
            switch event {
            case .line(let agent, let line): Output.line("[\(agent)] \(PrintableText.sanitize(line.line))")
            case .reconnecting(let agent, let error):
                printError("[\(agent)] lost the log stream (\(error)); reconnecting")
            case .waiting(let agents):
                let names = agents.map { "\($0.agent) (\($0.online == true ? "online" : "offline"))" }
                printError("still waiting for: " + names.joined(separator: ", "))
            }
        }
        var rollout: RolloutInfo?
        if let id = response.rollout?.id { rollout = try? await api.rollout(id: id) }
        if json {
            try printJSON(outcome.deployments)
        } else {
            Output.line("")
            Output.line(summary(outcome.deployments, timedOut: outcome.timedOut))
            if let rollout {
                Output.line("")
                Output.line(
                    "rollout \(rollout.id): \(rollout.state.rawValue)" + (rollout.reason.map { " — \($0)" } ?? ""))
            }
        }
        if !outcome.timedOut.isEmpty { throw ExitCode(Self.exitTimedOut) }
        if let rollout, rollout.state == .failed || rollout.state == .aborted { throw ExitCode(Self.exitFailed) }
        let failedCheck = outcome.deployments.contains { ($0.checks ?? []).contains { !$0.passed } }
        if failedCheck || outcome.deployments.contains(where: { $0.status != .succeeded }) {
            throw ExitCode(Self.exitFailed)
        }
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

    /// Where a rollout stands, in a line that changes only when it moves on.
    static func progress(_ rollout: RolloutInfo) -> String {
        let wave = "wave \(rollout.currentWave + 1) of \(rollout.waves.count)"
        switch rollout.state {
        case .running:
            if let next = rollout.nextWaveAt {
                return "rollout: \(wave) succeeded; the next starts at \(ISO8601DateFormatter().string(from: next))"
            }
            return
                "rollout: \(wave) running (\(rollout.waves[rollout.currentWave].map(\.agent).joined(separator: ", ")))"
        case .paused: return "rollout: paused at \(wave); `capstan deploy rollout resume \(rollout.id)` goes on"
        case .succeeded, .failed, .aborted:
            return "rollout: \(rollout.state.rawValue)" + (rollout.reason.map { " — \($0)" } ?? "")
        }
    }

    /// The deploy.json with its `rollout` set or overridden by --wave, --max-failures and --pause.
    private func withRolloutFlags(_ data: Data) throws -> Data {
        guard !waves.isEmpty || maxFailures != nil || pause != nil else { return data }
        guard var root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else { return data }
        var rollout = root["rollout"] as? [String: Any] ?? [:]
        if !waves.isEmpty {
            rollout["waves"] = waves.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
        } else if rollout["waves"] == nil {
            throw DeploySpecError(
                "--max-failures and --pause shape a rollout: name its waves with --wave (e.g. --wave web1 --wave web2,web3) "
                    + "or in \(file)'s \"rollout\"")
        }
        if let maxFailures { rollout["maxFailures"] = maxFailures }
        if let pause { rollout["pause"] = pause }
        root["rollout"] = rollout
        return try JSONSerialization.data(withJSONObject: root)
    }
}

/// The bytes of a deploy.json named on the command line, `-` for stdin.
func readDeployJSON(_ file: String) throws -> Data {
    do {
        return file == "-"
            ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: file))
    } catch {
        throw ValidationError("cannot read \(file): \(error.localizedDescription)")
    }
}
