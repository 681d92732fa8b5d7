import CapstanModel
import Foundation
import Logging
import NixCore

#if canImport(Glibc)
    import Glibc
#endif

/// Starts runners, keeps at most one deployment running and one waiting, and turns what the
/// runners leave in the state directory into messages for the server.
///
/// Everything it knows about a deployment is on disk, so a restarted agent picks up where the
/// previous one stopped: runners still alive, results not yet reported, log lines not yet sent.
public actor DeploymentSupervisor {
    /// A message for the server and what to record once it was sent.
    public struct Outgoing: Sendable {
        public var message: AgentMessage
        let commit: Commit
    }

    enum Commit: Sendable {
        case sentStarted(DeploymentDirectory)
        case forwarded(DeploymentDirectory, offset: UInt64)
        case sentClosure(DeploymentDirectory)
        case reported(DeploymentDirectory)
        case sentStatus(AgentStatus)
        case reportedLocalAction(LocalActionReport)
    }

    static let killedReason = "the deployment process ended without a result (it was killed)"
    /// Reported deployment directories kept for diagnosis; older ones are removed.
    static let keptDirectories = 20
    /// Upper bound of one log message, well under any sane WebSocket message limit.
    static let maxLogBatchBytes = 32 * 1024

    let configuration: AgentConfiguration
    let logger: Logger
    private var cache: AgentCache?
    /// The newest order that arrived while another deployment ran.
    private var waiting: DeploymentOrder?
    /// The runner this agent process started and must reap.
    private var child: (id: String, pid: pid_t)?
    /// The status the server last heard over the current connection.
    private var reportedStatus = AgentStatus(needsReboot: nil)

    public init(configuration: AgentConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        try StateFiles.makePrivateDirectory(configuration.stateDirectory + "/deployments")
    }

    /// The cache named in the server's welcome, used by every runner started from now on.
    public func setCache(_ cache: AgentCache?) { self.cache = cache }

    /// What the profile points at now.
    public var currentStorePath: StorePath? { ProfileTarget.storePath(ofProfile: configuration.profilePath) }

    /// What the agent says about its machine now.
    public func status() -> AgentStatus {
        AgentStatus(
            needsReboot: RebootRequirement.needsReboot(
                bootedSystem: configuration.bootedSystemPath, toplevel: currentStorePath?.path))
    }

    /// The status for a new connection's hello, which carries it: sent again only when it changes.
    public func statusForHello() -> AgentStatus {
        let status = status()
        reportedStatus = status
        return status
    }

    /// The deployment a runner is carrying out right now (started by this agent or a previous one).
    public func runningDeployment() -> String? {
        if let child { return child.id }
        // Not over until the machine booted it: new orders wait, and the server does not presume it lost.
        if let awaiting = awaitingReboot() { return awaiting.id }
        return DeploymentDirectory.all(in: configuration.stateDirectory).last { directory in
            (try? directory.result()) == nil && isAlive(directory)
        }?.id
    }

    /// A new order from the server: start it now, or after the running one (replacing an older waiting order).
    public func receive(_ order: DeploymentOrder) {
        let directory: DeploymentDirectory
        do {
            directory = try DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: order.id)
        } catch {
            logger.error("refusing deployment order: \(error)")
            return
        }
        if directory.exists || waiting?.id == order.id {
            logger.debug("deployment \(order.id) is already known; ignoring the repeated order")
            return
        }
        if let running = runningDeployment() {
            if let superseded = waiting {
                logger.info("deployment \(order.id) replaces waiting deployment \(superseded.id)")
            }
            logger.info("deployment \(order.id) waits for deployment \(running) to finish")
            waiting = order
            return
        }
        start(order)
    }

    /// The server no longer wants a deployment: drop it if it has not started; otherwise ask its
    /// runner to stop, which it does before the switch, or by rolling back after it.
    public func cancel(id: String) {
        if waiting?.id == id {
            logger.info("deployment \(id) cancelled before it started")
            waiting = nil
            return
        }
        if let directory = try? DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: id),
            cancelAwaitingReboot(directory)
        {
            return
        }
        guard let directory = try? DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: id),
            directory.exists, (try? directory.result()) == nil
        else { return }
        do {
            try directory.requestCancel()
            logger.notice("deployment \(id) cancelled while running; asked its runner to stop")
        } catch {
            logger.error("cannot cancel deployment \(id): \(error)")
        }
    }

    /// Reaps a finished runner, gives runners that died without a result a failed one, and starts
    /// the waiting order once nothing runs.
    public func tick() {
        if let child {
            var status: Int32 = 0
            let reaped = waitpid(child.pid, &status, WNOHANG)
            if reaped == child.pid || (reaped < 0 && errno == ECHILD) {
                self.child = nil
                logger.debug("runner of deployment \(child.id) (pid \(child.pid)) exited, status \(status)")
                if let directory = try? DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: child.id)
                {
                    recordKilledIfUnfinished(directory)
                }
            }
        }
        for directory in DeploymentDirectory.all(in: configuration.stateDirectory)
        where directory.id != child?.id && !directory.hasMarker(directory.reportedMarker) && !isAlive(directory) {
            recordKilledIfUnfinished(directory)
        }
        superviseReboot()
        if let order = waiting, runningDeployment() == nil {
            waiting = nil
            start(order)
        }
    }

    private func start(_ order: DeploymentOrder) {
        let task = DeploymentTask(
            order: order, cache: cache, token: configuration.token, serverURL: configuration.serverURL,
            profilePath: configuration.profilePath, system: configuration.system,
            verifyTimeoutSeconds: Double(configuration.verifyTimeout.components.seconds),
            activationMode: configuration.activationMode,
            activationTimeoutSeconds: TimeSpan(configuration.activationTimeout).seconds, checks: configuration.checks,
            checkGraceSeconds: TimeSpan(configuration.checkGrace).seconds)
        do {
            let directory = try DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: order.id)
            try directory.create(task: task)
            let pid = try launchRunner(for: directory)
            logger.info("deployment \(order.id): started runner (pid \(pid)) for \(order.storePath)")
        } catch {
            logger.error("deployment \(order.id) cannot start: \(error)")
            if let directory = try? DeploymentDirectory(stateDirectory: configuration.stateDirectory, id: order.id) {
                let outcome = DeploymentOutcome(
                    id: order.id, succeeded: false, reason: "the agent cannot start the deployment: \(error)",
                    rolledBack: false, currentStorePath: currentStorePath)
                try? directory.writeResult(outcome)
            }
        }
    }

    /// Starts `capstan deploy run` for `directory` as this agent's child; it waits for the machine's lock.
    func launchRunner(for directory: DeploymentDirectory) throws -> pid_t {
        let pid = try RunnerLauncher.spawn(
            executable: configuration.runnerExecutable, stateDirectory: configuration.stateDirectory,
            directory: directory)
        // Recorded at once so that an agent restarted a moment later still sees the runner alive.
        try? directory.writeRunnerPID(pid)
        child = (directory.id, pid)
        return pid
    }

    /// The runner this agent started and has not reaped yet, if any.
    var runningChild: String? { child?.id }

    /// Whether a runner of `directory` runs now, started by this agent or a previous one.
    func hasRunner(_ directory: DeploymentDirectory) -> Bool {
        child?.id == directory.id || isAlive(directory)
    }

    /// A runner is alive while its recorded pid is a live process that still runs this deployment.
    private func isAlive(_ directory: DeploymentDirectory) -> Bool {
        guard let pid = directory.runnerPID(), pid > 0 else { return false }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        // Guards against the pid having been reused by an unrelated process after a reboot.
        guard let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return true }
        let arguments = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains(directory.id) && arguments.contains("run")
    }

    private func recordKilledIfUnfinished(_ directory: DeploymentDirectory) {
        guard (try? directory.result()) == nil else { return }
        logger.error("deployment \(directory.id): \(Self.killedReason)")
        if let log = try? DeploymentLog(path: directory.logFile) {
            log.append("Failed to activate the deployment: \(Self.killedReason)")
        }
        let outcome = DeploymentOutcome(
            id: directory.id, succeeded: false, reason: Self.killedReason, rolledBack: false,
            currentStorePath: currentStorePath)
        do {
            try directory.writeResult(outcome)
        } catch {
            logger.error("cannot record the result of deployment \(directory.id): \(error)")
        }
    }

    // MARK: Reporting

    /// Everything the server has not heard yet, oldest deployment first, in the order to send it.
    public func outgoing() -> [Outgoing] {
        var messages: [Outgoing] = []
        for directory in DeploymentDirectory.all(in: configuration.stateDirectory)
        where !directory.hasMarker(directory.reportedMarker) {
            if !directory.hasMarker(directory.sentStartedMarker) {
                messages.append(
                    Outgoing(message: .started(id: directory.id, closureSize: nil), commit: .sentStarted(directory)))
            }
            var offset = directory.forwardedOffset()
            while let (lines, next) = try? directory.readLog(from: offset, maxLines: 200), !lines.isEmpty {
                let batch = Self.limit(lines)
                let end = batch.count == lines.count ? next : Self.offset(after: batch, in: directory, from: offset)
                messages.append(
                    Outgoing(message: .log(id: directory.id, lines: batch), commit: .forwarded(directory, offset: end)))
                offset = end
            }
            if !directory.hasMarker(directory.sentClosureMarker), let started = try? directory.started() {
                messages.append(
                    Outgoing(
                        message: .started(id: directory.id, closureSize: started.closureSize),
                        commit: .sentClosure(directory)))
            }
            if let outcome = try? directory.result(), !holdsBack(outcome, of: directory) {
                messages.append(Outgoing(message: .finished(outcome), commit: .reported(directory)))
            }
        }
        for report in LocalAction.unreported(stateDirectory: configuration.stateDirectory) {
            messages.append(Outgoing(message: .localAction(report), commit: .reportedLocalAction(report)))
        }
        let status = status()
        if status != reportedStatus {
            messages.append(Outgoing(message: .status(status), commit: .sentStatus(status)))
        }
        return messages
    }

    /// Records that `outgoing` reached the server, so it is not sent again.
    public func sent(_ outgoing: Outgoing) {
        do {
            switch outgoing.commit {
            case .sentStarted(let directory): try directory.setMarker(directory.sentStartedMarker)
            case .forwarded(let directory, let offset): try directory.setForwardedOffset(offset)
            case .sentClosure(let directory): try directory.setMarker(directory.sentClosureMarker)
            case .reported(let directory):
                try directory.setMarker(directory.reportedMarker)
                logger.info("reported the outcome of deployment \(directory.id)")
                pruneReported()
            case .reportedLocalAction(let report):
                try LocalAction.markReported(report, stateDirectory: configuration.stateDirectory)
                logger.info("reported the local \(report.action.rawValue) \(report.id)")
            case .sentStatus(let status):
                reportedStatus = status
                logger.info(
                    "reported: \(status.needsReboot.map { $0 ? "needs a reboot" : "runs its deployed kernel" } ?? "reboot need unknown")"
                )
            }
        } catch {
            logger.warning("cannot record progress in the state directory: \(error)")
        }
    }

    /// Lines up to `maxLogBatchBytes` (at least one), so one message stays small.
    private static func limit(_ lines: [LogLine]) -> [LogLine] {
        var total = 0
        var count = 0
        for line in lines {
            total += line.line.utf8.count + 40
            if count > 0 && total > maxLogBatchBytes { break }
            count += 1
        }
        return Array(lines.prefix(count))
    }

    private static func offset(after batch: [LogLine], in directory: DeploymentDirectory, from offset: UInt64) -> UInt64
    {
        (try? directory.readLog(from: offset, maxLines: batch.count).1) ?? offset
    }

    private func pruneReported() {
        let reported = DeploymentDirectory.all(in: configuration.stateDirectory)
            .filter { $0.hasMarker($0.reportedMarker) }
        for directory in reported.dropLast(Self.keptDirectories) {
            try? FileManager.default.removeItem(atPath: directory.path)
        }
    }
}
