import ArgumentParser
import CapstanClient
import CapstanModel
import Foundation

struct DeployDiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Show what activating a deploy.json would change on each agent, without activating it.",
        discussion: """
            For each agent: its current store path and the new one, the paths it would download with \
            their size (the narinfo FileSize of the paths its current configuration's closure lacks, \
            from the references the cache recorded), and the packages whose versions change, are added \
            or removed (store path names split into name and version, like nvd).
            """)

    @OptionGroup var client: ClientOptions
    @Argument(help: "deploy.json, or - for stdin.") var file: String
    @Option(name: .customLong("agent"), help: "Only this agent (repeatable).") var agents: [String] = []
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let data = try readDeployJSON(file)
        do {
            _ = try DeploySpec.parse(data, source: file)
        } catch {
            throw ValidationError(error.description)
        }
        let preview = try await client.makeDeployClient().preview(deployJSON: data, agents: agents)
        if json { return try printJSON(preview) }
        print(preview.agents.map(Self.describe).joined(separator: "\n\n"))
    }

    /// An agent's preview in full: paths, sizes, then one line per package change.
    static func describe(_ agent: AgentPreview) -> String {
        var lines = ["\(agent.agent): \(agent.current?.path ?? "(nothing yet)") → \(agent.new)"]
        lines.append(
            "  download:  \(agent.downloadPaths) paths, \(ByteFormat.string(agent.downloadSize)) "
                + "(\(ByteFormat.string(agent.unpackedSize)) unpacked); closure \(agent.closurePaths) paths, "
                + ByteFormat.string(agent.closureSize))
        if agent.current != nil && !agent.currentClosureKnown {
            lines.append("  note:      the cache does not hold all of the current closure; every path counts as new")
        }
        for change in agent.changed {
            lines.append("  changed:   \(change.name) \(versions(change.old)) → \(versions(change.new))")
        }
        for change in agent.added { lines.append("  added:     \(change.name) \(versions(change.new))") }
        for change in agent.removed { lines.append("  removed:   \(change.name) \(versions(change.old))") }
        for path in agent.missingFromCache { lines.append("  not in the cache: \(path)") }
        return lines.joined(separator: "\n")
    }

    /// The line `capstan deploy activate` prints for an agent before it starts.
    static func summary(_ agent: AgentPreview) -> String {
        var line =
            "\(agent.agent): \(agent.downloadPaths) paths to download (\(ByteFormat.string(agent.downloadSize))), "
            + "\(agent.changed.count) packages changed, \(agent.added.count) added, \(agent.removed.count) removed"
        if !agent.missingFromCache.isEmpty { line += "; \(agent.missingFromCache.count) paths not in the cache" }
        return line
    }

    private static func versions(_ list: [String]) -> String {
        let shown = list.map { $0.isEmpty ? "(no version)" : $0 }
        return shown.joined(separator: ", ")
    }
}
