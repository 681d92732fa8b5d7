import CapstanModel
import CapstanStorage
import Compression
import Foundation
import NIOCore
import NixCore

/// A NAR uploaded in parts (the cachix push protocol): parts are kept aside, and only on
/// completion are they read back in order and fed through the same verified ingest as any
/// other upload. Until then nothing is visible in the cache.
public struct MultipartNarUpload: Codable, Sendable {
    public var narID: String
    /// Random and unguessable: a part's upload URL carries it instead of a token.
    public var uploadID: String
    public var cacheID: String
    /// Compression of the uploaded bytes (`zstd`, `xz`).
    public var compression: String
    public var createdAt: Date
}

/// What the client declares about the path whose NAR the parts make up.
public struct MultipartPathInfo: Sendable {
    public var storePath: String
    public var narHash: String
    public var narSize: UInt64
    public var fileHash: String?
    public var fileSize: UInt64?
    /// Base names or full paths.
    public var references: [String]
    public var deriver: String?
    /// A bare base64 ed25519 signature of the path's fingerprint, by the cache's key.
    public var signature: String?

    public init(
        storePath: String, narHash: String, narSize: UInt64, fileHash: String?, fileSize: UInt64?,
        references: [String], deriver: String?, signature: String?
    ) {
        self.storePath = storePath
        self.narHash = narHash
        self.narSize = narSize
        self.fileHash = fileHash
        self.fileSize = fileSize
        self.references = references
        self.deriver = deriver
        self.signature = signature
    }
}

extension CacheService {
    static let maxParts = 10_000

    var multipartDirectory: String { blobs.root + "/multipart" }

    public func startMultipartUpload(in cache: CacheRecord, compression: CompressionMethod) throws -> MultipartNarUpload {
        guard compression.isSupported else {
            throw ServiceError.badRequest("compression '\(compression.rawValue)' is not supported; use zstd or xz")
        }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let upload = MultipartNarUpload(
            narID: UUID().uuidString.lowercased(), uploadID: Base16.encode(secret), cacheID: cache.id,
            compression: compression.rawValue, createdAt: Date())
        let directory = uploadDirectory(upload.uploadID)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(upload).write(to: URL(fileURLWithPath: directory + "/upload.json"))
        logger.debug("multipart upload started", metadata: ["cache": "\(cache.name)", "nar": "\(upload.narID)"])
        return upload
    }

    /// The upload, if it exists and belongs to this NAR (and cache, when given).
    public func multipartUpload(narID: String, uploadID: String, cache: CacheRecord?) throws -> MultipartNarUpload {
        let unknown = ServiceError.notFound("no upload \(uploadID.prefix(8))… of NAR \(narID) is in progress")
        guard uploadID.utf8.count == 64, Base16.decode(Substring(uploadID)) != nil,
            let data = FileManager.default.contents(atPath: uploadDirectory(uploadID) + "/upload.json"),
            let upload = try? JSONDecoder().decode(MultipartNarUpload.self, from: data), upload.narID == narID
        else { throw unknown }
        if let cache, cache.id != upload.cacheID { throw unknown }
        return upload
    }

    /// Stores one part; returns its ETag (the hex MD5 of its bytes), checked against `contentMD5` when given.
    public func storePart<Body: AsyncSequence>(
        of upload: MultipartNarUpload, number: Int, contentMD5: String?, body: Body
    ) async throws -> String where Body.Element == ByteBuffer {
        guard (1...Self.maxParts).contains(number) else {
            throw ServiceError.badRequest("part number \(number) is outside 1…\(Self.maxParts)")
        }
        let directory = uploadDirectory(upload.uploadID)
        let temporary = directory + "/part-\(number).\(UUID().uuidString.lowercased()).tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: nil),
            let handle = FileHandle(forWritingAtPath: temporary)
        else {
            throw ServiceError(.unavailable, "cannot write part \(number) of NAR \(upload.narID)")
        }
        var md5 = NixHasher(.md5)
        var size: UInt64 = 0
        do {
            defer { try? handle.close() }
            for try await buffer in body {
                size += UInt64(buffer.readableBytes)
                guard size <= maxNarSize else {
                    throw ServiceError(.payloadTooLarge, "part \(number) of NAR \(upload.narID) is larger than this server accepts")
                }
                buffer.withUnsafeReadableBytes { md5.update($0) }
                try handle.write(contentsOf: Data(buffer.readableBytesView))
            }
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        let digest = md5.finalize()
        if let contentMD5, Data(base64Encoded: contentMD5).map({ Array($0) }) != digest.bytes {
            try? FileManager.default.removeItem(atPath: temporary)
            throw ServiceError.badRequest(
                "part \(number) of NAR \(upload.narID): Content-MD5 \(contentMD5) does not match the received bytes "
                    + "(\(Data(digest.bytes).base64EncodedString())); send the part again")
        }
        _ = try? FileManager.default.removeItem(atPath: partPath(upload, number))
        try FileManager.default.moveItem(atPath: temporary, toPath: partPath(upload, number))
        return digest.digest(.base16)
    }

    /// Joins the parts and ingests them as one NAR: FileHash and FileSize (when declared) and the
    /// signature (when given) are checked first, NarHash and NarSize while ingesting; the path is
    /// visible only if all hold. The parts are removed once the path is stored.
    public func completeMultipartUpload(
        _ upload: MultipartNarUpload, in cache: CacheRecord, parts declared: [(number: Int, eTag: String)]?,
        info: MultipartPathInfo
    ) async throws -> PathUploadResult {
        let numbers = try partNumbers(of: upload, declared: declared)
        let files = numbers.map { partPath(upload, $0) }
        let storePath: StorePath
        let narHash: NixHash
        let references: [StorePath]
        do {
            storePath = try StorePath(parsing: info.storePath)
            narHash = try NixHash(parsing: info.narHash, algorithm: .sha256)
            references = try info.references.map { try Self.storePath(fromReference: $0) }
        } catch {
            throw ServiceError.badRequest("path info for \(info.storePath): \(error)")
        }
        if let signature = info.signature {
            let described = NarInfo(
                storePath: storePath, url: "", compression: upload.compression, fileHash: nil, fileSize: nil,
                narHash: narHash, narSize: info.narSize, references: references, deriver: nil, sigs: [], ca: nil)
            let publicKey = try NixPublicKey(parsing: cache.publicKey)
            guard publicKey.verify(fingerprint: described.fingerprint, signature: "\(publicKey.name):\(signature)") else {
                throw ServiceError.badRequest(
                    "the signature of \(info.storePath) does not verify with cache '\(cache.name)'s key \(publicKey.name); "
                        + "sign with that cache's key or send no signature (the server signs); nothing was stored")
            }
        }
        if info.fileHash != nil || info.fileSize != nil {
            var hasher = NixHasher(.sha256)
            var size: UInt64 = 0
            for file in files {
                try Self.readChunks(of: file) { chunk in
                    size += UInt64(chunk.count)
                    chunk.withUnsafeBytes { hasher.update($0) }
                }
            }
            if let fileSize = info.fileSize, fileSize != size {
                throw ServiceError.badRequest(
                    "file size mismatch for \(info.storePath): declared \(fileSize) bytes, the parts hold \(size); "
                        + "nothing was stored")
            }
            if let text = info.fileHash {
                let fileHash = try? NixHash(parsing: text, algorithm: .sha256)
                guard fileHash == hasher.finalize() else {
                    throw ServiceError.badRequest(
                        "file hash mismatch for \(info.storePath): declared \(text), the parts hash to "
                            + "\(hasher.finalize().narInfoString); nothing was stored")
                }
            }
        }
        let transit = try Self.compression(named: upload.compression, field: "upload compression")
        let body = ConcatenatedFiles(paths: files)
        let result = try await self.upload(
            to: cache,
            info: PathUploadInfo(
                storePath: info.storePath, narHash: info.narHash, narSize: info.narSize, references: info.references,
                deriver: info.deriver),
            transit: transit, body: body)
        abortMultipartUpload(upload)
        return result
    }

    /// Discards the parts; nothing of them was visible.
    public func abortMultipartUpload(_ upload: MultipartNarUpload) {
        try? FileManager.default.removeItem(atPath: uploadDirectory(upload.uploadID))
    }

    private func partNumbers(of upload: MultipartNarUpload, declared: [(number: Int, eTag: String)]?) throws -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: uploadDirectory(upload.uploadID))) ?? []
        let stored = Set(names.compactMap { name -> Int? in
            guard name.hasPrefix("part-"), !name.hasSuffix(".tmp") else { return nil }
            return Int(name.dropFirst(5))
        })
        guard let declared else {
            guard !stored.isEmpty else { throw ServiceError.badRequest("NAR \(upload.narID) has no uploaded parts") }
            return stored.sorted()
        }
        guard !declared.isEmpty else { throw ServiceError.badRequest("NAR \(upload.narID): the list of parts is empty") }
        for part in declared {
            guard stored.contains(part.number) else {
                throw ServiceError.badRequest("NAR \(upload.narID): part \(part.number) was never uploaded")
            }
            var md5 = NixHasher(.md5)
            try Self.readChunks(of: partPath(upload, part.number)) { chunk in chunk.withUnsafeBytes { md5.update($0) } }
            let eTag = part.eTag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
            guard eTag == md5.finalize().digest(.base16) else {
                throw ServiceError.badRequest(
                    "NAR \(upload.narID): part \(part.number) has ETag \(md5.finalize().digest(.base16)), not \(part.eTag)")
            }
        }
        return declared.map(\.number).sorted()
    }

    private func uploadDirectory(_ uploadID: String) -> String { multipartDirectory + "/" + uploadID }

    private func partPath(_ upload: MultipartNarUpload, _ number: Int) -> String {
        uploadDirectory(upload.uploadID) + "/part-\(number)"
    }

    private static func readChunks(of path: String, _ body: (Data) throws -> Void) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ServiceError(.unavailable, "cannot read \(path)")
        }
        defer { try? handle.close() }
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { try body(chunk) }
    }
}

/// Files read one after another in chunks of 1 MiB, as one stream of bytes.
struct ConcatenatedFiles: AsyncSequence {
    typealias Element = ByteBuffer
    let paths: [String]

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: [String]
        var handle: FileHandle?

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if handle == nil {
                    guard !remaining.isEmpty else { return nil }
                    let path = remaining.removeFirst()
                    guard let opened = FileHandle(forReadingAtPath: path) else {
                        throw ServiceError(.unavailable, "cannot read \(path)")
                    }
                    handle = opened
                }
                if let chunk = try handle?.read(upToCount: 1 << 20), !chunk.isEmpty {
                    return ByteBuffer(bytes: chunk)
                }
                try? handle?.close()
                handle = nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: paths, handle: nil) }
}
