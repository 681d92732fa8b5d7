import Foundation
import Logging

/// One `capstan effect run`: prepare the effect, choose the secrets it may see, push its prebuilt
/// paths to the binary caches, then run it in its sandbox.
public struct EffectRun: Sendable {
    public var target: EffectTarget
    public var secretsFile: String
    public var binaryCachesFile: String
    public var context: SecretContext

    public init(target: EffectTarget, secretsFile: String, binaryCachesFile: String, context: SecretContext) {
        self.target = target
        self.secretsFile = secretsFile
        self.binaryCachesFile = binaryCachesFile
        self.context = context
    }

    /// The effect's derivation and its exit status; errors are those of the steps before it ran.
    public func run(logger: Logger) async throws -> (derivation: String, status: Int32) {
        let caches = try BinaryCacheConfiguration.load(binaryCachesFile)
        let effect = try EffectPreparation(logger: logger).prepare(target)
        let secretsMap = try effect.derivation.secretsMap()
        var granted: [String: Secret] = [:]
        if !secretsMap.isEmpty || FileManager.default.fileExists(atPath: secretsFile) {
            granted = try SecretsFile.load(secretsFile).selection(
                for: secretsMap, context: context, friendly: true, logger: logger)
        }
        try await PrebuiltPush(logger: logger).push(effect.prebuilt, to: caches.caches)
        let status = try EffectRunner(logger: logger).run(effect, secrets: granted)
        return (effect.derivation.path, status)
    }
}
