import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct DeployRolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Show, pause, resume or abort a rollout (a deploy in waves).",
        subcommands: [Show.self, Pause.self, Resume.self, Abort.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a rollout's waves and the state of each agent's deployment.")

        @OptionGroup var client: ClientOptions
        @Argument(help: "Rollout id (printed by `capstan deploy activate`).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let rollout = try await client.makeDeployClient().rollout(id: id)
            if json { return try printJSON(rollout) }
            print(describe(rollout))
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start no further wave; deployments already sent run on.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Rollout id.") var id: String
        func run() async throws { try await DeployRolloutCommand.change(client, id, "pause") }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a paused rollout go on.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Rollout id.") var id: String
        func run() async throws { try await DeployRolloutCommand.change(client, id, "resume") }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a rollout: its deployments not yet started are cancelled; running ones finish.")
        @OptionGroup var client: ClientOptions
        @Argument(help: "Rollout id.") var id: String
        func run() async throws { try await DeployRolloutCommand.change(client, id, "abort") }
    }

    /// Pauses, resumes or aborts, and says where the rollout stands after it.
    static func change(_ client: ClientOptions, _ id: String, _ action: String) async throws {
        let rollout = try await client.makeDeployClient().changeRollout(id: id, action: action)
        let cancelled = rollout.waves.joined().filter { $0.status == .cancelled }.count
        print(
            "Rollout \(rollout.id): \(rollout.state.rawValue), wave \(rollout.currentWave + 1) of \(rollout.waves.count)"
                + (action == "abort" ? "; \(cancelled) deployments cancelled." : "."))
    }
}

/// A rollout as `capstan deploy rollout show` prints it: its state, then one row per agent by wave.
func describe(_ rollout: RolloutInfo) -> String {
    let formatter = ISO8601DateFormatter()
    var lines = [
        "rollout:     \(rollout.id)",
        "state:       \(rollout.state.rawValue), wave \(rollout.currentWave + 1) of \(rollout.waves.count)",
        "failures:    at most \(rollout.maxFailures)" + (rollout.pause.map { ", pause \($0) between waves" } ?? ""),
    ]
    if let next = rollout.nextWaveAt { lines.append("next wave:   \(formatter.string(from: next))") }
    if let reason = rollout.reason { lines.append("reason:      \(reason)") }
    lines.append("url:         \(rollout.url)")
    let rows = rollout.waves.enumerated().flatMap { index, wave in
        wave.map { member in
            [
                "\(index + 1)", member.agent, "#\(member.index)",
                member.held ? "held" : member.status.rawValue,
                member.startedOn.map { formatter.string(from: $0) } ?? "-",
                member.finishedOn.map { formatter.string(from: $0) } ?? "-",
                member.reason ?? "",
            ]
        }
    }
    lines.append("")
    lines.append(
        TextTable.render(
            header: ["WAVE", "AGENT", "DEPLOYMENT", "STATUS", "STARTED", "FINISHED", "REASON"], rows: rows))
    return lines.joined(separator: "\n")
}
