import CapstanProcess
import Foundation
import Logging

/// An effect instantiated and with its inputs realised, ready to run.
public struct PreparedEffect: Sendable {
    public var derivation: EffectDerivation
    /// Store paths the effect wants built before it runs (`prebuilt`): the deploy.json and the agents' paths.
    public var prebuilt: [String]
}

/// Instantiates an effect with the real Nix and realises what it needs.
public struct EffectPreparation: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func prepare(_ target: EffectTarget) throws(EffectError) -> PreparedEffect {
        var drvPath: String
        var prebuilt: [(path: String, drv: String?)] = []
        switch target {
        case .derivation(let path):
            drvPath = path
        case .attribute:
            struct Evaluated: Decodable {
                struct Prebuilt: Decodable {
                    var path: String
                    var drv: String?
                }
                var isEffect: Bool
                var drvPath: String?
                var prebuilt: [Prebuilt]
            }
            let output = try Self.nix([
                "nix-instantiate", "--eval", "--strict", "--json", "--read-write-mode", "--expr",
                target.evaluationExpression()!,
            ])
            guard let evaluated = try? JSONDecoder().decode(Evaluated.self, from: output) else {
                throw .unexpectedDerivation(target.displayName, reason: "evaluation printed something unexpected")
            }
            guard evaluated.isEffect, let path = evaluated.drvPath else { throw .notAnEffect(target.displayName) }
            drvPath = path
            prebuilt = evaluated.prebuilt.map { ($0.path, $0.drv) }
        }
        let shown = try Self.nix(
            ["nix", "--extra-experimental-features", "nix-command", "show-derivation", drvPath], quiet: true)
        let derivation = try EffectDerivation.parse(shown, path: drvPath)
        guard derivation.isEffect else { throw .notAnEffect(drvPath) }
        let toRealise = Set(derivation.inputDerivations.keys).union(prebuilt.compactMap { $0.drv })
            .union(derivation.inputSources).union(prebuilt.filter { $0.drv == nil }.map { $0.path })
        if !toRealise.isEmpty {
            logger.info("building the effect's inputs (\(toRealise.count) paths)")
            _ = try Self.nix(["nix-store", "--realise"] + toRealise.sorted())
        }
        return PreparedEffect(derivation: derivation, prebuilt: prebuilt.map { $0.path })
    }

    /// Runs a `nix` program and returns its stdout; its stderr (progress, evaluation errors) reaches
    /// the person as it comes unless `quiet`, and is in the error either way.
    static func nix(_ arguments: [String], quiet: Bool = false) throws(EffectError) -> Data {
        do {
            var invocation = CommandInvocation(arguments)
            // Build logs on stderr can be long: passed on line by line, never into a bounded capture.
            invocation.standardError = .lines
            let result = try CommandRunner.run(invocation) { line in
                if !quiet, line.stream == .standardError {
                    FileHandle.standardError.write(Data((line.text + "\n").utf8))
                }
            }
            return Data(try result.checked().standardOutput)
        } catch let error as CommandError {
            throw .command(error)
        } catch {
            throw .command(CommandError(arguments: arguments, reason: .couldNotStart("\(error)")))
        }
    }
}
