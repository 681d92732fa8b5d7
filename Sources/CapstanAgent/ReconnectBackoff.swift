/// Delays between connection attempts: 1 s doubling up to a cap, each jittered so that many agents
/// which lost the same server do not all come back in the same second.
struct ReconnectBackoff: Sendable {
    var initial: Duration = .seconds(1)
    var maximum: Duration = .seconds(30)
    /// A connection that stayed up this long was healthy: the next failure starts again at `initial`.
    var stableAfter: Duration = .seconds(60)
    private(set) var attempt = 0

    /// The next delay, between half and all of the exponential step.
    mutating func nextDelay() -> Duration {
        let step = min(maximum, initial * (1 << min(attempt, 16)))
        attempt += 1
        return step * Double.random(in: 0.5...1.0)
    }

    /// Called after each connection with how long it lasted.
    mutating func connectionEnded(after uptime: Duration) {
        if uptime >= stableAfter { attempt = 0 }
    }
}
