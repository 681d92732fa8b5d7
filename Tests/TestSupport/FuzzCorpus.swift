import Foundation

/// The committed inputs of the fuzz targets, Fuzz/Corpus/<target>/ in this checkout, which the
/// corpus replay tests run through the same harnesses as the fuzzers (Fuzz/Harnesses).
public enum FuzzCorpus {
    public static let targets = [
        "FuzzNarParser", "FuzzNarRestorer", "FuzzNarInfo", "FuzzDeploySpec", "FuzzSecretsFile", "FuzzAgentFrames",
    ]

    public static let directory: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fuzz/Corpus").path
    }()

    /// The files of one target's corpus, sorted by name.
    public static func files(_ target: String) -> [FuzzCorpusFile] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/" + target)) ?? []
        return names.sorted().map { FuzzCorpusFile(name: $0, path: "\(directory)/\(target)/\($0)") }
    }
}

public struct FuzzCorpusFile: Sendable, CustomStringConvertible {
    public var name: String
    public var path: String
    public var description: String { name }

    /// Runs `body` on the file's bytes.
    public func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws -> T) throws -> T {
        try Data(contentsOf: URL(fileURLWithPath: path)).withUnsafeBytes { try body($0) }
    }
}
