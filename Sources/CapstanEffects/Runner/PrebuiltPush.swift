import CapstanClient
import Foundation
import Logging

/// Pushes what an effect is about to hand to agents to every cache of the binary caches file, so that
/// they can always substitute it.
public struct PrebuiltPush: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func push(_ paths: [String], to caches: [BinaryCache]) async throws {
        guard !paths.isEmpty else { return }
        for cache in caches {
            switch cache {
            case .capstan(let name, let url, let cacheName, let token):
                logger.info(
                    "pushing \(paths.count) prebuilt paths and their closure to \(name) (\(url), cache \(cacheName))")
                let pusher = Pusher(client: CapstanAPIClient(baseURL: url, token: token), cache: cacheName)
                let summary = try await pusher.push(paths: paths) { event in
                    if case .uploaded(let path, let narSize, _) = event {
                        logger.info("uploaded \(path) (\(narSize) bytes NAR)")
                    }
                }
                logger.info("\(name): \(summary.uploaded.count) uploaded, \(summary.alreadyPresent) already there")
            case .nix(let name, let storeURI, _, let signingKeys):
                logger.info("copying \(paths.count) prebuilt paths and their closure to \(name) (\(storeURI))")
                try Self.sign(paths, with: signingKeys, cache: name)
                _ = try LocalNix.run(
                    ["nix", "--extra-experimental-features", "nix-command", "copy", "--to", storeURI] + paths)
            case .cachix(let name, _, _, _):
                logger.warning(
                    "binary cache \(name) is a CachixCache; capstan pushes only to CapstanCache and NixCache entries")
            }
        }
    }

    private static func sign(_ paths: [String], with keys: [String], cache: String) throws {
        for key in keys {
            let file = NSTemporaryDirectory() + "capstan-signing-\(UUID().uuidString)"
            guard
                FileManager.default.createFile(
                    atPath: file, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
            else {
                throw EffectError.signing(
                    cache: cache, reason: "cannot write a temporary key file in \(NSTemporaryDirectory())")
            }
            defer { try? FileManager.default.removeItem(atPath: file) }
            _ = try LocalNix.run(
                [
                    "nix", "--extra-experimental-features", "nix-command", "store", "sign", "--recursive", "--key-file",
                    file,
                ]
                    + paths)
        }
    }
}
