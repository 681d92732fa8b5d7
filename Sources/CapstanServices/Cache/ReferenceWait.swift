/// An upload's wish to wait, once its NAR is checked, for the paths it references to become
/// visible in the cache, rather than be refused at once: a client may then send a path while
/// its references are still on their way.
public struct ReferenceWait: Sendable {
    /// How long the client waits at the most; the server's `UploadLimits.maxReferenceWait` bounds it.
    public var timeout: Duration
    /// Says whether the client has gone away: the wait then ends and frees what it holds.
    public var clientGone: @Sendable () -> Bool

    public init(timeout: Duration, clientGone: @escaping @Sendable () -> Bool = { false }) {
        self.timeout = timeout
        self.clientGone = clientGone
    }
}
