import Compression
import Foundation
import NixCore
import TestSupport
import Testing

extension CompressionTests {
    /// The judge is `nix` itself: a file:// binary cache whose NARs Capstan compressed must
    /// substitute a deleted store path back, byte for byte.
    @Suite struct NixBinaryCache {
        /// A fresh directory tree with content no other test run has, so its store path is new.
        static func makeSourceTree(in directory: TemporaryDirectory, method: CompressionMethod) throws -> String {
            let nonce = UUID().uuidString.lowercased()
            let root = directory.sub("capstan-interop-\(method)-\(nonce.prefix(8))")
            var generator = PseudoRandomBytes(seed: UInt64(abs(nonce.hashValue)))
            let fileManager = FileManager.default
            try fileManager.createDirectory(atPath: root + "/share/doc", withIntermediateDirectories: true)
            try fileManager.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
            try Data("nonce \(nonce)\n".utf8).write(to: URL(fileURLWithPath: root + "/share/doc/README"))
            try Data(generator.bytes(300_000)).write(to: URL(fileURLWithPath: root + "/share/data.bin"))
            try Data(generator.bytes(1)).write(to: URL(fileURLWithPath: root + "/share/one-byte"))
            try Data().write(to: URL(fileURLWithPath: root + "/share/empty"))
            try Data("#!/bin/sh\necho \(nonce)\n".utf8).write(to: URL(fileURLWithPath: root + "/bin/hello"))
            try fileManager.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root + "/bin/hello")
            try fileManager.createSymbolicLink(atPath: root + "/bin/hi", withDestinationPath: "hello")
            return root
        }

        @Test(arguments: [CompressionMethod.zstd, .xz, .none])
        func nixSubstitutesNarsCapstanCompressed(method: CompressionMethod) throws {
            let work = try TemporaryDirectory()
            let source = try Self.makeSourceTree(in: work, method: method)
            let storePath = try ProcessRunner.nix(["nix-store", "--add", source]).stdoutString
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(storePath.hasPrefix("/nix/store/"))
            let nar = Array(try ProcessRunner.nix(["nix-store", "--dump", storePath]).stdout)

            // Compress in 64 KiB pieces as the server would, hashing the file as it is written.
            let encoder = try method.makeEncoder()
            var compressed: [UInt8] = []
            var fileHasher = NixHasher(.sha256)
            let write: (UnsafeRawBufferPointer) -> Void = { piece in
                fileHasher.update(piece)
                compressed.append(contentsOf: piece)
            }
            for start in stride(from: 0, to: nar.count, by: 64 * 1024) {
                try nar[start..<min(start + 64 * 1024, nar.count)].withUnsafeBytes {
                    try encoder.process($0, into: write)
                }
            }
            try encoder.finish(into: write)
            let fileHash = fileHasher.finalize()
            let narHash = NixHasher.hash(.sha256, nar)
            let nixNarHash = try ProcessRunner.nix(["nix-store", "--query", "--hash", storePath]).stdoutString
            #expect(nixNarHash.trimmingCharacters(in: .whitespacesAndNewlines) == narHash.narInfoString)

            let cache = work.sub("cache")
            let narURL = "nar/\(fileHash.digest(.nix32)).nar\(method.fileExtension)"
            try FileManager.default.createDirectory(atPath: cache + "/nar", withIntermediateDirectories: true)
            try Data(compressed).write(to: URL(fileURLWithPath: cache + "/" + narURL))
            try Data("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n".utf8)
                .write(to: URL(fileURLWithPath: cache + "/nix-cache-info"))
            let hashPart = String(storePath.dropFirst("/nix/store/".count).prefix(32))
            let narInfo = """
                StorePath: \(storePath)
                URL: \(narURL)
                Compression: \(method.narInfoName)
                FileHash: \(fileHash.narInfoString)
                FileSize: \(compressed.count)
                NarHash: \(narHash.narInfoString)
                NarSize: \(nar.count)
                References: 

                """
            try Data(narInfo.utf8).write(to: URL(fileURLWithPath: cache + "/\(hashPart).narinfo"))

            try ProcessRunner.nix(["nix-store", "--delete", storePath])
            #expect(!FileManager.default.fileExists(atPath: storePath))

            try ProcessRunner.nix([
                "nix-store", "--realise", storePath, "--option", "substituters", "file://\(cache)",
                "--option", "require-sigs", "false",
            ])
            #expect(FileManager.default.fileExists(atPath: storePath + "/share/doc/README"))
            let restored = Array(try ProcessRunner.nix(["nix-store", "--dump", storePath]).stdout)
            #expect(restored == nar)
            #expect(
                FileManager.default.contents(atPath: storePath + "/share/data.bin")
                    == FileManager.default.contents(atPath: source + "/share/data.bin"))
            #expect(FileManager.default.isExecutableFile(atPath: storePath + "/bin/hello"))
            try ProcessRunner.nix(["nix-store", "--verify-path", storePath])
        }
    }
}
