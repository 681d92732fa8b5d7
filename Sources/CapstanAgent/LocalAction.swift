import CapstanModel
import Foundation
import Logging
import NixCore

/// Break glass: `capstan deploy local rollback|activate` on the machine, without the server. It runs the
/// agent's own steps (realise, switch, activate, check, roll back on failure) under the agent's lock, and
/// leaves a report in the state directory that the agent sends to the server once it is connected.
public struct LocalAction: Sendable {
    public var action: LocalActionReport.Action
    /// The configuration to activate; for a rollback, the profile's previous generation is found instead.
    public var storePath: StorePath?
    public var stateDirectory: String
    public var profilePath: String
    public var system: String
    public var activationMode: ActivationMode
    public var activationTimeout: Duration

    public init(
        action: LocalActionReport.Action, storePath: StorePath?, stateDirectory: String, profilePath: String,
        system: String, activationMode: ActivationMode, activationTimeout: Duration
    ) {
        self.action = action
        self.storePath = storePath
        self.stateDirectory = stateDirectory
        self.profilePath = profilePath
        self.system = system
        self.activationMode = activationMode
        self.activationTimeout = activationTimeout
    }

    /// Where local actions keep their run directories and reports, apart from the server's deployments.
    public static func directory(stateDirectory: String) -> String { stateDirectory + "/local-actions" }

    /// Runs the action and returns its report (also written for the agent); refuses at once while a
    /// deployment holds the agent's lock.
    public func run(logger: Logger) async throws -> LocalActionReport {
        guard let lock = try RunnerLock.tryAcquire(stateDirectory: stateDirectory) else {
            throw LocalActionError.deploymentRunning(lock: RunnerLock.path(stateDirectory: stateDirectory))
        }
        defer { withExtendedLifetime(lock) {} }
        let previous = ProfileTarget.storePath(ofProfile: profilePath)
        let target: StorePath
        switch action {
        case .activate:
            guard let storePath else { throw LocalActionError.noStorePath }
            target = storePath
        case .rollback:
            target = try Self.previousGeneration(of: profilePath)
        }
        let id = "local-" + UUID().uuidString.lowercased()
        let root = Self.directory(stateDirectory: stateDirectory)
        try StateFiles.makePrivateDirectory(root + "/deployments")
        let directory = try DeploymentDirectory(stateDirectory: root, id: id)
        let task = DeploymentTask(
            order: DeploymentOrder(id: id, index: 0, storePath: target, rollbackScript: nil), cache: nil, token: "",
            serverURL: "", profilePath: profilePath, system: system, verifyTimeoutSeconds: 0,
            activationMode: activationMode, activationTimeoutSeconds: TimeSpan(activationTimeout).seconds)
        try directory.create(task: task)
        _ = supersedeAwaitingReboot(by: id, target: target, logger: logger)
        let started = Date()
        var runnerLogger = logger
        runnerLogger[metadataKey: "local-action"] = "\(action.rawValue)"
        let runner = try DeploymentRunner(
            task: task, directory: directory, stateDirectory: stateDirectory, logger: runnerLogger)
        let outcome = await runner.run()
        try directory.writeResult(outcome)
        let report = LocalActionReport(
            id: id, action: action, storePath: target, previousStorePath: previous, succeeded: outcome.succeeded,
            reason: outcome.reason, rolledBack: outcome.rolledBack, startedAt: started, finishedAt: Date())
        try StateFiles.writeJSON(report, to: Self.reportFile(root: root, id: id))
        return report
    }

    static func reportFile(root: String, id: String) -> String { root + "/\(id).json" }
    static func reportedMarker(root: String, id: String) -> String { root + "/\(id).reported" }

    /// The reports the server has not heard yet, oldest first.
    static func unreported(stateDirectory: String) -> [LocalActionReport] {
        let root = directory(stateDirectory: stateDirectory)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { $0.hasSuffix(".json") }
            .compactMap { try? StateFiles.readJSON(LocalActionReport.self, from: root + "/" + $0) }
            .filter { !FileManager.default.fileExists(atPath: reportedMarker(root: root, id: $0.id)) }
            .sorted { $0.startedAt < $1.startedAt }
    }

    static func markReported(_ report: LocalActionReport, stateDirectory: String) throws {
        try StateFiles.writeAtomically(
            Data(), to: reportedMarker(root: directory(stateDirectory: stateDirectory), id: report.id), mode: 0o644)
    }

    /// The store path of the profile's generation before the current one (`<profile>-<N>-link`).
    static func previousGeneration(of profilePath: String) throws -> StorePath {
        let directory = (profilePath as NSString).deletingLastPathComponent
        let name = (profilePath as NSString).lastPathComponent
        guard let current = try? FileManager.default.destinationOfSymbolicLink(atPath: profilePath),
            let currentNumber = generation((current as NSString).lastPathComponent, of: name)
        else { throw LocalActionError.noPreviousGeneration(profile: profilePath) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        guard let previous = names.compactMap({ generation($0, of: name) }).filter({ $0 < currentNumber }).max(),
            let storePath = ProfileTarget.storePath(ofProfile: directory + "/\(name)-\(previous)-link")
        else { throw LocalActionError.noPreviousGeneration(profile: profilePath) }
        return storePath
    }

    /// N of `<name>-N-link`.
    static func generation(_ link: String, of name: String) -> Int? {
        guard link.hasPrefix(name + "-"), link.hasSuffix("-link") else { return nil }
        return Int(link.dropFirst(name.count + 1).dropLast(5))
    }
}

public enum LocalActionError: Error, CustomStringConvertible, Equatable {
    case deploymentRunning(lock: String)
    case noStorePath
    case noPreviousGeneration(profile: String)

    public var description: String {
        switch self {
        case .deploymentRunning(let lock):
            "a deployment is running on this machine (its runner holds \(lock)); wait for it to end, or cancel it, then try again"
        case .noStorePath:
            "give the store path to activate, e.g. capstan deploy local activate /nix/store/…-nixos-system-web1"
        case .noPreviousGeneration(let profile):
            "the profile \(profile) has no generation before the current one to roll back to"
        }
    }
}
