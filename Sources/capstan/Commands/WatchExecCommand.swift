import ArgumentParser
import CapstanClient
import CapstanProcess
import Foundation

struct WatchExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch-exec",
        abstract: "Run a build command, then push every store path it added to a cache.",
        discussion: """
            Lists the store's valid paths before and after the command and pushes the new ones (with their \
            closures). Paths are pushed even when the command fails; the exit status is the command's.
            Example: capstan watch-exec fleet -- nix-build ci.nix
            """
    )

    @OptionGroup var client: ClientOptions
    @Argument(help: "The cache to push to.") var cache: String
    @Argument(parsing: .postTerminator, help: "The command to run, after --.") var command: [String] = []

    func validate() throws {
        guard !command.isEmpty else { throw ValidationError("give the command to run after --") }
    }

    func run() async throws {
        let before = try Self.validPaths()
        var invocation = CommandInvocation(command)
        invocation.standardOutput = .inherit
        invocation.standardError = .inherit
        // The person's Ctrl-C reaches the build as it would without capstan around it.
        invocation.grouping = .parentGroup
        let termination: Termination
        do {
            termination = try CommandRunner.run(invocation).termination
        } catch let error as CommandError {
            throw ValidationError("cannot run \(command[0]): \(error)")
        }
        // Derivations are recipes, not results; agents and users substitute outputs.
        let added = try Self.validPaths().subtracting(before).filter { !$0.hasSuffix(".drv") }.sorted()
        if added.isEmpty {
            printError("the command added no store paths; nothing to push")
        } else {
            let display = PushProgressDisplay(interactive: false)
            let summary = try await Pusher(client: client.makeClient(), cache: cache).push(paths: added) {
                display.handle($0)
            }
            printError(
                "Pushed \(summary.uploaded.count) paths to '\(cache)'; \(summary.alreadyPresent) were already there.")
        }
        if !termination.isSuccess { throw ExitCode(termination.status) }
    }

    /// Every valid path. A path deleted while Nix lists them (a garbage collection running beside
    /// the command) fails the listing: it is taken again, a few times.
    static func validPaths() throws -> Set<String> {
        var attempt = 1
        while true {
            do {
                let output = try LocalNix.run([
                    "nix", "--extra-experimental-features", "nix-command", "path-info", "--all",
                ])
                return Set(String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init))
            } catch  where attempt < 5 {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
    }
}
