import CapstanEffects
import Foundation
import Logging

/// A secrets.json is accepted or refused with a SecretsFileError; an accepted one is written back
/// as a file that reads back to the same text, and its conditions evaluate in any context.
enum SecretsFileHarness {
    static let contexts = [
        SecretContext(),
        SecretContext(owner: "org", repo: "repo", ref: "refs/heads/main", defaultBranch: "main"),
        SecretContext(owner: "org", repo: "repo", ref: "refs/tags/v1", defaultBranch: "main"),
    ]
    static let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    static func run(_ bytes: UnsafeRawBufferPointer) throws -> FuzzVerdict {
        let file: SecretsFile
        do {
            file = try SecretsFile.parse(Data(bytes), path: "secrets.json")
        } catch {
            return .refused(error.description)
        }
        let text = file.rendered
        let again: SecretsFile
        do {
            again = try SecretsFile.parse(Data(text.utf8), path: "secrets.json")
        } catch {
            throw FuzzFinding("a written secrets.json does not read back: \(error)\n\(text)")
        }
        guard again.rendered == text else {
            throw FuzzFinding("secrets.json is not stable when written back:\n\(text)\n\(again.rendered)")
        }
        let everything = Dictionary(uniqueKeysWithValues: file.secrets.keys.map { ($0, $0) })
        for context in contexts {
            for secret in file.secrets.values { _ = secret.condition?.holds(in: context) }
            _ = try? file.selection(for: everything, context: context, friendly: false, logger: logger)
        }
        return .accepted
    }
}
