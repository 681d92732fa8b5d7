import CapstanClient
import CapstanModel
import CapstanProcess
import Foundation
import Logging
import NixCore

#if canImport(Glibc)
    import Glibc
#endif

/// Carries out one deployment: realise (rooted) → activate (NixOS: `test`, then `boot` once healthy)
/// → verify (server, rollback script, health checks), and roll back to the previous generation when
/// activation or verification fails, runs out of time, or the server cancels it after the switch.
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
        if let step = directory.rebootStep() {
            let runner = try DeploymentRunner(
                task: task, directory: directory, stateDirectory: stateDirectory, logger: logger)
            return try runner.carryOut(step)
        }
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
        var progress = Progress()
        let outcome: DeploymentOutcome
        do {
            try await deploy(previous: previous, progress: &progress)
            outcome = DeploymentOutcome(
                id: order.id, succeeded: true, reason: nil, rolledBack: false, currentStorePath: order.storePath,
                checks: progress.checks)
            // The server ends the log with the one success line followers wait for.
        } catch {
            outcome = handle(error, previous: previous, progress: progress)
            let verb = outcome.cancelled ? "Cancelled" : "Failed to activate"
            say("\(verb) the deployment \(order.storePath): \(outcome.reason ?? "")")
        }
        // The profile holds the configuration now, or it was rolled back and is not needed.
        directory.removeGCRoots()
        return outcome
    }

    /// How far a deployment got, for what a failure or a cancel has to undo.
    struct Progress {
        /// The new configuration is (being) activated: stopping from here on means rolling back.
        var switched = false
        /// Activated with `test`, to be committed with `boot`.
        var twoPhase = false
        /// `switch-to-configuration boot` started.
        var commitStarted = false
        /// What the activation was doing, for a timeout's reason.
        var step = "starting"
        var checks: [CheckResult]?
    }

    // MARK: Steps

    private func deploy(previous: StorePath?, progress: inout Progress) async throws {
        let storePath = task.order.storePath
        let beforeSwitch = InterruptionWatch(directory: directory)
        try beforeSwitch.check()

        try realise([storePath] + (task.order.rollbackScript.map { [$0] } ?? []), watch: beforeSwitch)
        let closureSize = self.closureSize(of: storePath)
        do {
            try directory.writeStarted(DeploymentStarted(closureSize: closureSize))
        } catch {
            logger.warning("cannot record the closure size: \(error)")
        }

        if let builtFor = builtSystem(of: storePath), builtFor != task.system {
            throw DeploymentFailure.wrongSystem(storePath: storePath, builtFor: builtFor, agentSystem: task.system)
        }
        var failedBefore: Set<String> = []
        if task.allChecks.contains(.noFailedUnits) {
            do {
                failedBefore = try HealthCheckRun.failedUnits(executor: executor, watch: beforeSwitch)
            } catch let error as Interruption {
                throw error
            } catch {
                throw DeploymentFailure.checkSetupFailed(error)
            }
            if !failedBefore.isEmpty {
                say("Units failed before the switch: \(failedBefore.sorted().joined(separator: ", "))")
            }
        }
        try beforeSwitch.check()

        let timeout = task.activationTimeout
        let watch = InterruptionWatch(directory: directory, timeout: timeout)
        let kind = ActivationKind(of: storePath)
        progress.twoPhase = kind == .nixos && (task.activationMode ?? .twoPhase) == .twoPhase
        if progress.twoPhase {
            say("Activating \(storePath) in two phases (test, checks, then boot) within \(TimeSpan(timeout))")
            progress.switched = true
            progress.step = "switch-to-configuration test"
            try activate(storePath, kind: kind, action: "test", watch: watch)
            let checks = try await verify(failedBefore: failedBefore, watch: watch, progress: &progress)
            progress.checks = checks
            try watch.check()
            progress.step = "switching the profile"
            try switchProfile(to: storePath, watch: watch)
            progress.step = "switch-to-configuration boot"
            progress.commitStarted = true
            say("Committing \(storePath) as the configuration to boot")
            do {
                try executor.run(kind.command(storePath, action: "boot"), watch: watch)
            } catch let failure as CommandError {
                throw DeploymentFailure.commitFailed(failure)
            }
        } else {
            progress.step = "switching the profile"
            try switchProfile(to: storePath, watch: watch)
            progress.switched = true
            progress.step = "activation"
            if kind != .none { say("Activating \(storePath) within \(TimeSpan(timeout))") }
            try activate(storePath, kind: kind, action: "switch", watch: watch)
            let checks = try await verify(failedBefore: failedBefore, watch: watch, progress: &progress)
            progress.checks = checks
            try watch.check()
        }
    }

    /// Realises `paths` with a garbage collector root each in the deployment's directory, so that
    /// a collection before the profile holds them cannot take them away.
    private func realise(_ paths: [StorePath], watch: InterruptionWatch) throws {
        var command = ["nix-store", "--realise"] + paths.map(\.path) + ["--add-root", directory.gcRoot, "--indirect"]
        if let cache = task.cache {
            say("Fetching \(paths.map(\.path).joined(separator: " ")) from \(cache.url)")
            command += ["--option", "extra-substituters", cache.url]
            command += ["--option", "extra-trusted-public-keys", cache.publicKey]
            if !cache.isPublic, let netrc = try writeNetrc(for: cache) {
                command += ["--option", "netrc-file", netrc]
            }
        }
        do {
            try executor.run(command, watch: watch)
        } catch let failure as CommandError {
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
                CommandError(arguments: ["write", path], reason: .couldNotStart("\(error)")))
        }
        return path
    }

    /// The closure size from `nix path-info -S --json`; nil (and a log line) if Nix does not say.
    private func closureSize(of storePath: StorePath) -> Int64? {
        let path = storePath.path
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
    private func builtSystem(of storePath: StorePath) -> String? {
        guard let text = try? String(contentsOfFile: storePath.path + "/system", encoding: .utf8) else { return nil }
        let system = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return system.isEmpty ? nil : system
    }

    /// The store path the profile points at now, nil if there is no profile yet.
    func profileTarget() -> StorePath? { ProfileTarget.storePath(ofProfile: task.profilePath) }

    private func switchProfile(to storePath: StorePath, watch: InterruptionWatch) throws {
        let profilesDirectory = (task.profilePath as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: profilesDirectory, withIntermediateDirectories: true)
        say("Switching \(task.profilePath) to \(storePath)")
        do {
            try executor.run(["nix-env", "--profile", task.profilePath, "--set", storePath.path], watch: watch)
        } catch let failure as CommandError {
            throw DeploymentFailure.profileSwitchFailed(profile: task.profilePath, failure)
        }
    }

    /// Runs what makes a configuration live; `action` is NixOS's (`switch`, `test`, `boot`).
    private func activate(_ storePath: StorePath, kind: ActivationKind, action: String, watch: InterruptionWatch) throws
    {
        guard kind != .none else {
            say("\(storePath) is no NixOS, nix-darwin or Home Manager configuration; switching the profile is all")
            return
        }
        say("Activating \(storePath)" + (kind == .nixos ? " (\(action))" : ""))
        do {
            try executor.run(kind.command(storePath, action: action), watch: watch)
        } catch let failure as CommandError {
            throw DeploymentFailure.activationFailed(failure)
        }
    }

    /// The new configuration must still reach the server, pass the rollback script and the health checks.
    private func verify(failedBefore: Set<String>, watch: InterruptionWatch, progress: inout Progress) async throws
        -> [CheckResult]?
    {
        progress.step = "waiting for the server to answer"
        try await waitForServer(watch: watch)
        if let script = task.order.rollbackScript {
            progress.step = "the rollback script"
            say("Running the rollback script \(script)")
            do {
                try executor.run([script.path], watch: watch)
            } catch let failure as CommandError {
                throw DeploymentFailure.rollbackScriptFailed(failure)
            }
        }
        let checks = task.allChecks
        guard !checks.isEmpty else { return nil }
        progress.step = "health checks"
        let run = HealthCheckRun(
            checks: checks, grace: task.checkGrace, executor: executor, log: log, failedBefore: failedBefore)
        return try await run.run(watch: watch)
    }

    /// Network, DNS, certificates…: `/health` of the server answers within the verify timeout.
    private func waitForServer(watch: InterruptionWatch) async throws {
        // A local action runs without the server, often because it is unreachable.
        guard !task.serverURL.isEmpty else { return }
        let client = CapstanAPIClient(baseURL: task.serverURL, token: nil)
        let deadline = ContinuousClock.now + .milliseconds(Int64(task.verifyTimeoutSeconds * 1000))
        var lastError = "no attempt"
        while true {
            try watch.check()
            let remaining = min(ContinuousClock.now.duration(to: deadline), watch.remaining ?? .seconds(5))
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
            try await watch.sleep(for: .seconds(1))
        }
    }

    // MARK: Failure

    /// What a failure or a cancel leaves: before the switch nothing to undo; after it, a rollback.
    private func handle(_ error: any Error, previous: StorePath?, progress: Progress) -> DeploymentOutcome {
        let cancelled = (error as? Interruption) == .cancelled
        // A profile switch that was interrupted may have happened all the same.
        let switched = progress.switched || profileTarget() != previous
        var checks = progress.checks
        var reason: String
        if cancelled {
            say("The deployment was cancelled " + (switched ? "during the activation" : "before the switch"))
            reason =
                switched
                ? "cancelled during the activation" : "cancelled before the switch; the machine was not changed"
        } else {
            let failure: DeploymentFailure
            switch error {
            case Interruption.timedOut(let timeout): failure = .timedOut(TimeSpan(timeout), step: progress.step)
            case let known as DeploymentFailure: failure = known
            default: failure = .unexpected("\(error)")
            }
            if case .checksFailed(let results, _) = failure { checks = results }
            say("Deployment failed: \(failure)")
            logger.error("deployment failed: \(failure)")
            reason = failure.description
        }
        var rolledBack = false
        if switched, let previous {
            if let rollbackError = rollBack(to: previous, progress: progress) { reason += "; \(rollbackError)" }
            rolledBack = profileTarget() == previous
        } else if switched {
            reason += "; nothing to roll back to: this was the agent's first deployment"
        }
        return DeploymentOutcome(
            id: task.order.id, succeeded: false, reason: reason, rolledBack: rolledBack,
            currentStorePath: profileTarget(), cancelled: cancelled, checks: checks)
    }

    /// Points the profile at `previous` again and re-activates it the way the new one was activated
    /// (`test` in two phases, `boot` too once the commit had started); nil when that worked.
    private func rollBack(to previous: StorePath, progress: Progress) -> String? {
        say("Rolling back to \(previous)")
        let watch = InterruptionWatch.rollback(directory: directory, timeout: task.activationTimeout)
        let kind = ActivationKind(of: previous)
        do {
            if profileTarget() != previous {
                try executor.run(["nix-env", "--profile", task.profilePath, "--set", previous.path], watch: watch)
            }
            if progress.twoPhase && kind == .nixos {
                try activate(previous, kind: kind, action: "test", watch: watch)
                if progress.commitStarted { try executor.run(kind.command(previous, action: "boot"), watch: watch) }
            } else {
                try activate(previous, kind: kind, action: "switch", watch: watch)
            }
            say("Rolled back to \(previous)")
            return nil
        } catch {
            let detail = (error as? Interruption).map { _ in "it did not finish within \(TimeSpan(watch.timeout))" }
            logger.error("rollback to \(previous) failed: \(error)")
            return "rolling back to \(previous) failed too: \(detail ?? "\(error)")"
        }
    }

    /// A line of the runner's own in the deployment log (and the process log).
    func say(_ line: String) {
        log.append(line)
        logger.info("\(line)")
    }
}
