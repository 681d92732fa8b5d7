import CapstanModel
import CapstanStorage
import Compression
import Foundation
import NIOCore
import NixCore

extension CacheService {
    /// Re-reads every blob the cache's paths are stored in and checks it against their narinfo:
    /// FileHash and FileSize of the stored bytes, NarHash and NarSize of the NAR inside (which must
    /// parse as one). With `repair`, the paths whose NAR is missing or wrong are hidden (their
    /// narinfo removed), so that Nix no longer fetches them and a new push stores them again.
    public func verify(
        _ cache: CacheRecord, repair: Bool, by principal: Principal,
        progress: @Sendable (VerifyProgress) async -> Void = { _ in }
    ) async throws -> VerifyReport {
        try AccessPolicy.require(.manageCache(cache), by: principal)
        let paths = try await store.paths(cacheID: cache.id)
        let byFile = Dictionary(grouping: paths, by: \.fileName)
        let files = byFile.keys.sorted()
        let totalBytes = files.reduce(Int64(0)) { $0 + (byFile[$1]?.first?.fileSize ?? 0) }
        var state = VerifyProgress(checkedBlobs: 0, totalBlobs: files.count, bytesRead: 0, totalBytes: totalBytes)
        var problems: [(record: PathRecord, problem: String)] = []
        var lastReport = ContinuousClock.now
        await progress(state)
        for file in files {
            try Task.checkCancellation()
            let records = byFile[file] ?? []
            let outcome = await check(file: file, compression: records.first?.compression ?? "none")
            switch outcome {
            case .failed(let problem, let bytesRead):
                state.bytesRead += bytesRead
                problems += records.map { ($0, problem) }
            case .read(let result):
                state.bytesRead += Int64(result.fileSize)
                for record in records {
                    if let problem = Self.mismatch(record, result) { problems.append((record, problem)) }
                }
            }
            state.checkedBlobs += 1
            if ContinuousClock.now - lastReport >= .milliseconds(250) {
                lastReport = .now
                await progress(state)
            }
        }
        await progress(state)
        var hidden = Set<String>()
        if repair && !problems.isEmpty {
            hidden = Set(
                try await store.removePaths(cacheID: cache.id, hashParts: problems.map(\.record.hashPart), at: Date()))
            await forget(cacheID: cache.id)
        }
        if !problems.isEmpty {
            logger.warning(
                "cache verification found broken paths",
                metadata: ["cache": "\(cache.name)", "paths": "\(problems.count)", "hidden": "\(hidden.count)"])
        }
        if repair {
            await audit.record(
                .cacheVerified, by: principal, target: cache.name,
                detail: "\(paths.count) paths checked, \(problems.count) broken, \(hidden.count) hidden")
        }
        return VerifyReport(
            cache: cache.name, checkedPaths: paths.count, checkedBlobs: files.count, bytesRead: state.bytesRead,
            problems: problems.map {
                VerifyProblem(
                    storePath: $0.record.storePath, fileName: $0.record.fileName, problem: $0.problem,
                    hidden: hidden.contains($0.record.hashPart))
            }, repaired: repair)
    }

    private enum BlobCheck {
        case read(IngestResult)
        case failed(String, bytesRead: Int64)
    }

    /// Reads one blob through the same validating, hashing pipeline uploads go through.
    private func check(file: String, compression: String) async -> BlobCheck {
        let bytes: BlobBytes
        do {
            guard let found = try await blobs.read(.nar(file)) else {
                return .failed("its NAR file nar/\(file) is missing", bytesRead: 0)
            }
            bytes = found
        } catch {
            return .failed("its NAR file nar/\(file) cannot be read: \(error)", bytesRead: 0)
        }
        var read: Int64 = 0
        do {
            let method = try Self.compression(named: compression, field: "stored compression")
            let ingest = try NarIngest(
                transit: method, stored: method, writer: DiscardingBlobWriter(), maxNarSize: .max)
            for try await buffer in bytes {
                read += Int64(buffer.readableBytes)
                try await ingest.consume(buffer)
            }
            return .read(try await ingest.finish())
        } catch {
            return .failed("its NAR file nar/\(file) is not a valid \(compression) NAR: \(error)", bytesRead: read)
        }
    }

    private static func mismatch(_ record: PathRecord, _ result: IngestResult) -> String? {
        if record.fileSize != Int64(result.fileSize) {
            return "FileSize is \(record.fileSize) but nar/\(record.fileName) holds \(result.fileSize) bytes"
        }
        if (try? NixHash(parsing: record.fileHash)) != result.fileHash {
            return
                "FileHash is \(record.fileHash) but nar/\(record.fileName) hashes to \(result.fileHash.narInfoString)"
        }
        if record.narSize != Int64(result.narSize) {
            return "NarSize is \(record.narSize) but the NAR in nar/\(record.fileName) is \(result.narSize) bytes"
        }
        if (try? NixHash(parsing: record.narHash)) != result.narHash {
            return "NarHash is \(record.narHash) but the NAR in nar/\(record.fileName) hashes to "
                + result.narHash.narInfoString
        }
        return nil
    }
}

/// A blob writer that keeps nothing: verification reads through the upload pipeline, writing nowhere.
final class DiscardingBlobWriter: BlobWriter {
    private(set) var bytesWritten: Int64 = 0
    func write(_ buffer: ByteBuffer) async throws { bytesWritten += Int64(buffer.readableBytes) }
    func commit(as key: BlobKey) async throws {}
    func discard() async {}
}
