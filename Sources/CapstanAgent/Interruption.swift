import Foundation

/// Why the runner stops what it is doing before it ends by itself.
public enum Interruption: Error, Sendable, Equatable {
    /// The server cancelled the deployment.
    case cancelled
    /// The activation took longer than its timeout.
    case timedOut(Duration)
}

/// What every step of an activation looks at while it waits: the deployment's cancel marker and
/// the activation's deadline.
struct InterruptionWatch: Sendable {
    let directory: DeploymentDirectory
    /// When the activation must be over; nil before the activation starts (realising may take long).
    var deadline: ContinuousClock.Instant?
    var timeout: Duration

    /// Only cancellation: for the steps before the activation.
    init(directory: DeploymentDirectory) {
        self.directory = directory
        self.deadline = nil
        self.timeout = .zero
    }

    /// Cancellation and a deadline `timeout` from now.
    init(directory: DeploymentDirectory, timeout: Duration) {
        self.directory = directory
        self.deadline = .now + timeout
        self.timeout = timeout
    }

    /// Without cancellation, with a deadline: for a rollback, which must run to its end.
    static func rollback(directory: DeploymentDirectory, timeout: Duration) -> InterruptionWatch {
        var watch = InterruptionWatch(directory: directory, timeout: timeout)
        watch.ignoresCancel = true
        return watch
    }

    private var ignoresCancel = false

    func interruption() -> Interruption? {
        if let deadline, ContinuousClock.now >= deadline { return .timedOut(timeout) }
        if !ignoresCancel && directory.isCancelRequested { return .cancelled }
        return nil
    }

    func check() throws(Interruption) {
        if let interruption = interruption() { throw interruption }
    }

    /// Time left before the deadline, nil without one.
    var remaining: Duration? { deadline.map { ContinuousClock.now.duration(to: $0) } }

    /// Sleeps, looking up every 100 ms.
    func sleep(for duration: Duration) async throws(Interruption) {
        let end = ContinuousClock.now + duration
        while ContinuousClock.now < end {
            try check()
            try? await Task.sleep(for: min(.milliseconds(100), ContinuousClock.now.duration(to: end)))
        }
        try check()
    }
}
