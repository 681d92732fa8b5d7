import Foundation
import NixCore
import TestSupport

/// A corpus in a fresh temporary directory, kept alive with the value.
struct CorpusFixture {
    let directory: TemporaryDirectory
    let root: String

    init() throws {
        directory = try TemporaryDirectory("capstan-nar")
        root = directory.sub("corpus")
        try NarCorpus.create(at: root)
    }

    func path(_ item: String) -> String { item.isEmpty ? root : root + "/" + item }
}

func nixDump(_ path: String) throws -> Data {
    try ProcessRunner.nix(["nix-store", "--dump", path]).stdout
}

func capstanDump(_ path: String, chunkSize: Int = NarWriter.defaultChunkSize) throws -> Data {
    var out = Data()
    try NarWriter.dump(path: path, chunkSize: chunkSize) { out.append(contentsOf: $0) }
    return out
}

/// Feeds `nar` to `visitor` in pieces of `chunkSize` bytes and finishes.
func parse<V: NarVisitor>(_ nar: Data, into visitor: V, chunkSize: Int = 1 << 16, limits: NarLimits = .default)
    throws -> NarParser<V>
{
    var parser = NarParser(visitor: visitor, limits: limits)
    try nar.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let end = min(offset + chunkSize, raw.count)
            try parser.feed(UnsafeRawBufferPointer(rebasing: raw[offset..<end]))
            offset = end
        }
    }
    try parser.finish()
    return parser
}

/// `find` output of modes and types, to compare trees restored by two tools.
func modes(of root: String) throws -> String {
    try ProcessRunner.run(["find", root, "-printf", "%P %m %y\n"], check: true).stdoutString
        .split(separator: "\n").sorted().joined(separator: "\n")
}
