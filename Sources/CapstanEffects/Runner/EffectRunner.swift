import CapstanProcess
import Foundation
import Logging

/// Runs a prepared effect's builder in its sandbox with the secrets it was granted.
/// Output streams straight through; the result is the effect's exit status.
public struct EffectRunner: Sendable {
    let logger: Logger
    let bwrap: String

    public init(logger: Logger, bwrap: String = "bwrap") {
        self.logger = logger
        self.bwrap = bwrap
    }

    public func run(_ effect: PreparedEffect, secrets: [String: Secret]) throws -> Int32 {
        let root = try Self.makeRunDirectory()
        defer { Self.remove(root) }
        let sandbox = EffectSandbox(root: root, bwrap: bwrap)
        try sandbox.populate(secrets: secrets)
        let command = sandbox.command(
            for: effect.derivation, environment: EffectSandbox.environment(for: effect.derivation))
        logger.info("running effect \(effect.derivation.path)")
        var invocation = CommandInvocation(command)
        invocation.standardOutput = .inherit
        invocation.standardError = .inherit
        // In the person's process group, so that their Ctrl-C reaches the effect as before.
        invocation.grouping = .parentGroup
        // The sandbox inherits the umask: every file the effect writes is private to it.
        let previousMask = umask(0o077)
        defer { umask(previousMask) }
        do {
            return try CommandRunner.run(invocation).termination.status
        } catch let error as CommandError {
            throw EffectError.sandbox("cannot start \(bwrap): \(error) (install bubblewrap)")
        }
    }

    static func makeRunDirectory() throws -> String {
        let template = (NSTemporaryDirectory() as NSString).appendingPathComponent("capstan-effect.XXXXXX")
        var bytes = Array(template.utf8CString)
        guard let made = mkdtemp(&bytes) else { throw EffectError.sandbox("cannot create \(template)") }
        let path = String(cString: made)
        // Private: what an effect derives from a secret is for no other user of the host. The
        // effect's user is this process's own, mapped, so it can still write its build directory.
        chmod(path, 0o700)
        return path
    }

    static func remove(_ path: String) {
        // The effect may leave read-only directories behind.
        if let enumerator = FileManager.default.enumerator(atPath: path) {
            for case let item as String in enumerator {
                // Never follow a link the effect made: it could point anywhere on the host.
                var status = stat()
                if lstat(path + "/" + item, &status) == 0, status.st_mode & S_IFMT == S_IFDIR {
                    chmod(path + "/" + item, 0o700)
                }
            }
        }
        try? FileManager.default.removeItem(atPath: path)
    }
}
