import CapstanClient
import CapstanModel
import Foundation
import Logging
import NixCore

#if canImport(Glibc)
    import Glibc
#endif

/// Carries out one deployment: realise → switch the profile → activate → verify, and roll back
/// to the previous generation when activation or verification fails.
///
/// It runs inside `capstan deploy run`, a process of its own, so that an activation which
/// restarts the agent does not take the deployment down with it.
public struct DeploymentRunner: Sendable {
    public let task: DeploymentTask
    public let directory: DeploymentDirectory
    let stateDirectory: String
    let log: DeploymentLog
    let executor: CommandExecutor
    let logger: Logger

    public init(task: DeploymentTask, directory: DeploymentDirectory, stateDirectory: String, logger: Logger) throws {
        self.task = task
        self.directory = directory
        self.stateDirectory = stateDirectory
        self.log = try DeploymentLog(path: directory.logFile)
        self.executor = CommandExecutor(log: log, extraEnvironment: ["CAPSTAN_DEPLOYMENT_ID": task.order.id])
        var logger = logger
        logger[metadataKey: "deployment"] = "\(task.order.id)"
        self.logger = logger
    }

    /// The whole job of `capstan deploy run`: wait for the machine's deployment lock, run the
    /// deployment unless it already has a result, and write `result.json` last.
    public static func runDetached(stateDirectory: String, id: String, logger: Logger) async throws
        -> DeploymentOutcome
    {
        let directory = try DeploymentDirectory(stateDirectory: stateDirectory, id: id)
        let task = try directory.task()
        let lock = try RunnerLock.acquire(stateDirectory: stateDirectory)
        defer { withExtendedLifetime(lock) {} }
        try directory.writeRunnerPID(getpid())
        if let existing = try directory.result() {
            logger.info("deployment \(id) already has a result; nothing to do")
            return existing
        }
        let runner = try DeploymentRunner(
            task: task, directory: directory, stateDirectory: stateDirectory, logger: logger)
        let outcome = await runner.run()
        try directory.writeResult(outcome)
        return outcome
    }

    public func run() async -> DeploymentOutcome {
        let order = task.order
        say("Deploying \(order.storePath) (deployment #\(order.index), \(order.id)) with profile \(task.profilePath)")
        let previous = profileTarget()
        if let previous { say("The profile points at \(previous) now") }
        let outcome: DeploymentOutcome
        do {
            try await deploy(previous: previous)
            outcome = DeploymentOutcome(
                id: order.id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: order.storePath)
            say("Successfully activated the deployment \(order.storePath)")
        } catch let failure as DeploymentFailure {
            outcome = handle(failure, previous: previous)
            say("Failed to activate the deployment \(order.storePath): \(outcome.reason ?? "")")
        } catch {
            outcome = handle(
                .activationFailed(CommandFailure(command: [], status: -1, lastLines: ["\(error)"])), previous: previous)
            say("Failed to activate the deployment \(order.storePath): \(outcome.reason ?? "")")
        }
        return outcome
    }

    // MARK: Steps

    private func deploy(previous: String?) async throws {
        let storePath = task.order.storePath
        try checkStorePath(storePath)
        if let script = task.order.rollbackScript { try checkStorePath(script) }

        try realise([storePath] + (task.order.rollbackScript.map { [$0] } ?? []))
        let closureSize = self.closureSize(of: storePath)
        do {
            try directory.writeStarted(DeploymentStarted(closureSize: closureSize))
        } catch {
            logger.warning("cannot record the closure size: \(error)")
        }

        if let builtFor = builtSystem(of: storePath), builtFor != task.system {
            throw DeploymentFailure.wrongSystem(storePath: storePath, builtFor: builtFor, agentSystem: task.system)
        }

        try switchProfile(to: storePath)
        do {
            try activate(storePath)
        } catch let failure as CommandFailure {
            throw DeploymentFailure.activationFailed(failure)
        }
        try await verify()
    }

    private func checkStorePath(_ path: String) throws {
        do {
            _ = try StorePath(parsing: path)
        } catch {
            throw DeploymentFailure.invalidStorePath(path, detail: "\(error)")
        }
    }

    private func realise(_ paths: [String]) throws {
        var command = ["nix-store", "--realise"] + paths
        if let cache = task.cache {
            say("Fetching \(paths.joined(separator: " ")) from \(cache.url)")
            command += ["--option", "extra-substituters", cache.url]
            command += ["--option", "extra-trusted-public-keys", cache.publicKey]
            if !cache.isPublic, let netrc = try writeNetrc(for: cache) {
                command += ["--option", "netrc-file", netrc]
            }
        }
        do {
            try executor.run(command)
        } catch let failure as CommandFailure {
            throw DeploymentFailure.realiseFailed(failure)
        }
    }

    /// A netrc with the agent token as password for the cache's host: how Nix authenticates to a private cache.
    private func writeNetrc(for cache: AgentCache) throws -> String? {
        guard let host = URLComponents(string: cache.url)?.host, !host.isEmpty else {
            logger.warning("cache URL \(cache.url) has no host; fetching without credentials")
            return nil
        }
        let path = stateDirectory + "/netrc"
        let text = "machine \(host) login capstan password \(task.token)\n"
        do {
            try StateFiles.writeAtomically(Data(text.utf8), to: path, mode: 0o600)
        } catch {
            throw DeploymentFailure.realiseFailed(
                CommandFailure(command: ["write", path], status: -1, lastLines: ["\(error)"]))
        }
        return path
    }

    /// The closure size from `nix path-info -S --json`; nil (and a log line) if Nix does not say.
    private func closureSize(of path: String) -> Int64? {
        let command = ["nix", "--extra-experimental-features", "nix-command", "path-info", "-S", "--json", path]
        guard let output = try? executor.run(command, logStdout: false) else { return nil }
        let json = try? JSONSerialization.jsonObject(with: Data(output.utf8))
        // Older Nix prints an array of objects, newer an object keyed by path.
        let entry: [String: Any]? =
            (json as? [[String: Any]])?.first ?? (json as? [String: Any])?[path] as? [String: Any]
        guard let size = (entry?["closureSize"] as? NSNumber)?.int64Value else { return nil }
        say("Closure size: \(size) bytes")
        return size
    }

    /// The `system` file of a NixOS / nix-darwin configuration, if it has one.
    private func builtSystem(of storePath: String) -> String? {
        guard let text = try? String(contentsOfFile: storePath + "/system", encoding: .utf8) else { return nil }
        let system = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return system.isEmpty ? nil : system
    }

    /// The store path the profile points at now, nil if there is no profile yet.
    func profileTarget() -> String? { ProfileTarget.storePath(ofProfile: task.profilePath) }

    private func switchProfile(to storePath: String) throws {
        let profilesDirectory = (task.profilePath as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: profilesDirectory, withIntermediateDirectories: true)
        say("Switching \(task.profilePath) to \(storePath)")
        do {
            try executor.run(["nix-env", "--profile", task.profilePath, "--set", storePath])
        } catch let failure as CommandFailure {
            throw DeploymentFailure.profileSwitchFailed(profile: task.profilePath, failure)
        }
    }

    /// Runs what makes a configuration live, chosen by what the store path contains.
    private func activate(_ storePath: String) throws {
        let fm = FileManager.default
        let command: [String]
        if fm.fileExists(atPath: storePath + "/nixos-version") {
            command = [storePath + "/bin/switch-to-configuration", "switch"]
        } else if fm.fileExists(atPath: storePath + "/darwin-version") {
            command = [storePath + "/sw/bin/darwin-rebuild", "activate"]
        } else if fm.fileExists(atPath: storePath + "/hm-version") {
            command = [storePath + "/activate"]
        } else {
            say("\(storePath) is no NixOS, nix-darwin or Home Manager configuration; switching the profile is all")
            return
        }
        say("Activating \(storePath)")
        try executor.run(command)
    }

    private func verify() async throws {
        try await waitForServer()
        if let script = task.order.rollbackScript {
            say("Running the rollback script \(script)")
            do {
                try executor.run([script])
            } catch let failure as CommandFailure {
                throw DeploymentFailure.rollbackScriptFailed(failure)
            }
        }
    }

    /// The new configuration must still reach the server (network, DNS, certificates…).
    private func waitForServer() async throws {
        let client = CapstanAPIClient(baseURL: task.serverURL, token: nil)
        let deadline = ContinuousClock.now + .milliseconds(Int64(task.verifyTimeoutSeconds * 1000))
        var lastError = "no attempt"
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            let attemptSeconds = max(1, min(5, remaining.components.seconds))
            do {
                try await client.health(timeoutSeconds: attemptSeconds)
                say("The server at \(task.serverURL) answers")
                return
            } catch {
                lastError = "\(error)"
            }
            if ContinuousClock.now + .seconds(1) >= deadline {
                throw DeploymentFailure.serverUnreachable(
                    url: task.serverURL, seconds: task.verifyTimeoutSeconds, lastError: lastError)
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    // MARK: Failure

    private func handle(_ failure: DeploymentFailure, previous: String?) -> DeploymentOutcome {
        let id = task.order.id
        say("Deployment failed: \(failure)")
        logger.error("deployment failed: \(failure)")
        switch failure {
        case .invalidStorePath, .realiseFailed, .wrongSystem, .profileSwitchFailed:
            // Nothing was switched: the previous configuration is still the active one.
            return DeploymentOutcome(
                id: id, succeeded: false, reason: failure.description, rolledBack: false,
                currentStorePath: profileTarget())
        case .activationFailed, .serverUnreachable, .rollbackScriptFailed:
            break
        }
        guard let previous else {
            return DeploymentOutcome(
                id: id, succeeded: false,
                reason: "\(failure); nothing to roll back to: this was the agent's first deployment",
                rolledBack: false, currentStorePath: profileTarget())
        }
        say("Rolling back to \(previous)")
        var reason = failure.description
        do {
            try executor.run(["nix-env", "--profile", task.profilePath, "--set", previous])
            try activate(previous)
            say("Rolled back to \(previous)")
        } catch {
            reason += "; rolling back to \(previous) failed too: \(error)"
            logger.error("rollback to \(previous) failed: \(error)")
        }
        return DeploymentOutcome(
            id: id, succeeded: false, reason: reason, rolledBack: profileTarget() == previous,
            currentStorePath: profileTarget())
    }

    /// A line of the runner's own in the deployment log (and the process log).
    private func say(_ line: String) {
        log.append(line)
        logger.info("\(line)")
    }
}
