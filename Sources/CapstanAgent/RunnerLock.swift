import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The flock on `<state>/lock` that a runner holds for the whole deployment: one deployment at
/// a time per machine, and the kernel drops it when a runner dies however it dies.
public final class RunnerLock: Sendable {
    private let descriptor: Int32
    public let path: String

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    public static func path(stateDirectory: String) -> String { stateDirectory + "/lock" }

    /// Waits until no other runner holds the lock, then holds it until this value is released.
    public static func acquire(stateDirectory: String) throws -> RunnerLock {
        // Waiting, the lock is only ever missed through an error.
        guard let lock = try lock(stateDirectory: stateDirectory, waiting: true) else {
            throw StateFileError.errno("lock", path(stateDirectory: stateDirectory))
        }
        return lock
    }

    /// The lock if no runner holds it now, else nil: for actions that must not wait behind a deployment.
    public static func tryAcquire(stateDirectory: String) throws -> RunnerLock? {
        try lock(stateDirectory: stateDirectory, waiting: false)
    }

    /// The one way the lock is taken; nil only when not `waiting` and another runner holds it.
    private static func lock(stateDirectory: String, waiting: Bool) throws -> RunnerLock? {
        let path = path(stateDirectory: stateDirectory)
        // O_CLOEXEC: activation scripts start daemons that must not inherit (and keep) the lock.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StateFileError.errno("open the lock", path) }
        while flock(fd, waiting ? LOCK_EX : LOCK_EX | LOCK_NB) != 0 {
            if errno == EINTR { continue }
            let held = !waiting && errno == EWOULDBLOCK
            let error = StateFileError.errno("lock", path)
            close(fd)
            if held { return nil }
            throw error
        }
        return RunnerLock(descriptor: fd, path: path)
    }

    /// True when some runner holds the lock right now.
    public static func isHeld(stateDirectory: String) -> Bool {
        let path = path(stateDirectory: stateDirectory)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            flock(fd, LOCK_UN)
            return false
        }
        return errno == EWOULDBLOCK
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
