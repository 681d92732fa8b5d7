/// How the server looks after its caches over time (the per-cache retention is a cache setting).
public struct CacheLifecycleSettings: Sendable, Equatable {
    /// How often garbage collection runs on each cache.
    public var gcInterval: Duration
    /// How long a blob no path uses stays before it is deleted, so that an upload which found it
    /// (and dedups onto it) is never broken by its deletion; also bounds how long a removed path's
    /// narinfo may still be served by a replica that missed the removal.
    public var blobGrace: Duration
    /// How often path uses and request counts gathered in memory are written to the database.
    public var accessFlushInterval: Duration

    public init(
        gcInterval: Duration = .seconds(3600), blobGrace: Duration = .seconds(3600),
        accessFlushInterval: Duration = .seconds(30)
    ) {
        self.gcInterval = gcInterval
        self.blobGrace = blobGrace
        self.accessFlushInterval = accessFlushInterval
    }

    /// A replica keeps a narinfo in memory at most this long: well within the blob grace period.
    var narInfoLifetime: Duration { min(.seconds(60), blobGrace / 4) }

    /// An upload must make its path visible within this long after it reclaimed its blob, or give up:
    /// a garbage collection may delete a blob no path uses once `blobGrace` has passed.
    var uploadCommitDeadline: Duration { blobGrace / 2 }
}

extension Duration {
    var timeInterval: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
