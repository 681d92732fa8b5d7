import Foundation

/// How long and how large a client's request may be, and how many connections the server holds:
/// bounds that keep clients that send slowly, or send nothing, from using up the server.
public struct HTTPLimits: Sendable, Equatable {
    /// A new connection must have sent its first request's headers within this time.
    public var headerTimeout: Duration = .seconds(10)
    /// A connection with nothing in flight (between requests, or a request body that stopped
    /// arriving) is closed after this time.
    public var idleTimeout: Duration = .seconds(60)
    /// The request line and headers together; larger requests are answered 431.
    public var maxHeaderBytes: Int = 32 << 10
    /// Connections held at once; nil: derived from the process's descriptor limit.
    public var maxConnections: Int?
    /// On SIGTERM, how long connections get to finish before the rest are closed.
    public var shutdownGrace: Duration = .seconds(2)

    public init() {}

    /// Descriptors kept for everything but client connections: the database, blobs being
    /// written, the event loops, the webhook client, the log.
    static let reservedDescriptors = 64

    /// `maxConnections`, or the descriptor limit minus a reserve, so that accepting a connection
    /// never fails for want of a descriptor.
    public var effectiveMaxConnections: Int {
        if let maxConnections { return maxConnections }
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else {
            return 10_000
        }
        let descriptors = Int(clamping: limit.rlim_cur)
        let reserve = min(Self.reservedDescriptors * 4, max(Self.reservedDescriptors, descriptors / 4))
        return max(16, descriptors - reserve)
    }

    /// Raises the soft descriptor limit to the hard one: each connected agent holds a descriptor, and
    /// service managers often start processes with a soft limit of 1024.
    public static func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
