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
    /// The push (or admin) token that started it: the upload dies with it.
    public var tokenID: String?
}

/// What the client declares about the path whose NAR the parts make up.
public struct MultipartPathInfo: Sendable {
    public var storePath: StorePath
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
        storePath: StorePath, narHash: String, narSize: UInt64, fileHash: String?, fileSize: UInt64?,
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

    public func startMultipartUpload(in cache: CacheRecord, compression: CompressionMethod, by principal: Principal)
        async throws -> MultipartNarUpload
    {
        try AccessPolicy.requireWrite(cache, by: principal)
        guard compression.isSupported else {
            throw ServiceError.badRequest("compression '\(compression.rawValue)' is not supported; use zstd or xz")
        }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let upload = MultipartNarUpload(
            narID: UUID().uuidString.lowercased(), uploadID: Base16.encode(secret), cacheID: cache.id,
            compression: compression.rawValue, createdAt: Date(), tokenID: principal.tokenID)
        try await blobs.put(Array(try JSONEncoder.capstan.encode(upload)), as: .upload(uploadID: upload.uploadID))
        logger.debug("multipart upload started", metadata: ["cache": "\(cache.name)", "nar": "\(upload.narID)"])
        return upload
    }

    /// A part's upload, for a request that carries its authority in the URL (like a presigned URL:
    /// the cachix client sends no token there): the upload must exist, belong to this NAR and to the
    /// cache the URL names, be younger than the expiry, and the token that started it must still be
    /// valid and allowed to write to that cache.
    public func multipartUploadForPart(narID: String, uploadID: String, cacheName: String) async throws
        -> MultipartNarUpload
    {
        let upload = try await multipartUpload(narID: narID, uploadID: uploadID, cache: nil)
        guard let cache = try await store.cache(id: upload.cacheID), cache.name == cacheName else {
            throw ServiceError.notFound("no upload \(uploadID.prefix(8))… of NAR \(narID) is in progress")
        }
        try await requireAlive(upload)
        return upload
    }

    /// The upload, if it exists and belongs to this NAR (and cache, when given).
    public func multipartUpload(narID: String, uploadID: String, cache: CacheRecord?) async throws
        -> MultipartNarUpload
    {
        let unknown = ServiceError.notFound("no upload \(uploadID.prefix(8))… of NAR \(narID) is in progress")
        guard uploadID.utf8.count == 64, Base16.decode(Substring(uploadID)) != nil,
            let data = try await blobs.contents(of: .upload(uploadID: uploadID)),
            let upload = try? JSONDecoder.capstan.decode(MultipartNarUpload.self, from: Data(data)),
            upload.narID == narID
        else { throw unknown }
        if let cache, cache.id != upload.cacheID { throw unknown }
        return upload
    }

    /// Stores one part; returns its ETag (the hex MD5 of its bytes), checked against `contentMD5` when given.
    /// `expectedSize` (the request's Content-Length) is reserved against the cache's bound before a byte is read.
    public func storePart<Body: AsyncSequence>(
        of upload: MultipartNarUpload, number: Int, contentMD5: String?, expectedSize: UInt64? = nil, body: Body
    ) async throws -> String where Body.Element == ByteBuffer {
        guard (1...Self.maxParts).contains(number) else {
            throw ServiceError.badRequest("part number \(number) is outside 1…\(Self.maxParts)")
        }
        guard let cache = try await store.cache(id: upload.cacheID) else {
            throw ServiceError.notFound("the cache of NAR \(upload.narID) no longer exists")
        }
        let tooLarge = ServiceError(
            .payloadTooLarge, "part \(number) of NAR \(upload.narID) is larger than this server accepts")
        if let expectedSize, expectedSize > maxNarSize { throw tooLarge }
        var reservation = try await reserveUpload(in: cache, expectedSize: expectedSize)
        let part = BlobKey.part(uploadID: upload.uploadID, number: number)
        var md5 = NixHasher(.md5)
        var size: UInt64 = 0
        let eTag: String
        do {
            let writer = try await blobs.makeWriter()
            do {
                for try await buffer in body {
                    size += UInt64(buffer.readableBytes)
                    guard size <= maxNarSize else { throw tooLarge }
                    try await reservation.cover(size)
                    buffer.withUnsafeReadableBytes { md5.update($0) }
                    try await writer.write(buffer)
                }
                let digest = md5.finalize()
                if let contentMD5, Data(base64Encoded: contentMD5).map({ Array($0) }) != digest.bytes {
                    throw ServiceError.badRequest(
                        "part \(number) of NAR \(upload.narID): Content-MD5 \(contentMD5) does not match the received "
                            + "bytes (\(Data(digest.bytes).base64EncodedString())); send the part again")
                }
                try await writer.commit(as: part)
                eTag = digest.digest(.base16)
            } catch {
                await writer.discard()
                throw error
            }
            try await reservation.settle(as: part, uploadID: upload.uploadID, bytes: size)
        } catch {
            await reservation.release()
            throw error
        }
        return eTag
    }

    /// Joins the parts and ingests them as one NAR: FileHash and FileSize (when declared) and the
    /// signature (when given) are checked first, NarHash and NarSize while ingesting; the path is
    /// visible only if all hold. The parts are removed once the path is stored.
    public func completeMultipartUpload(
        _ upload: MultipartNarUpload, in cache: CacheRecord, parts declared: [(number: Int, eTag: String)]?,
        info: MultipartPathInfo
    ) async throws -> PathUploadResult {
        let numbers = try await partNumbers(of: upload, declared: declared)
        let parts = numbers.map { BlobKey.part(uploadID: upload.uploadID, number: $0) }
        let storePath = info.storePath
        let narHash: NixHash
        let references: [StorePath]
        do {
            narHash = try NixHash(parsing: info.narHash, algorithm: .sha256)
            references = try info.references.map { try Self.storePath(fromReference: $0) }
            _ = try NarInfo(
                validating: storePath, url: "nar/pending", narHash: narHash, narSize: info.narSize,
                references: references, deriver: info.deriver.map { Self.baseName($0) })
        } catch {
            throw ServiceError.badRequest("path info for \(info.storePath): \(error)")
        }
        if let signature = info.signature {
            let described = NarInfo(
                storePath: storePath, url: "", compression: upload.compression, fileHash: nil, fileSize: nil,
                narHash: narHash, narSize: info.narSize, references: references, deriver: nil, sigs: [], ca: nil)
            let publicKey = try NixPublicKey(parsing: cache.publicKey)
            guard publicKey.verify(fingerprint: described.fingerprint, signature: "\(publicKey.name):\(signature)")
            else {
                throw ServiceError.badRequest(
                    "the signature of \(info.storePath) does not verify with cache '\(cache.name)'s key \(publicKey.name); "
                        + "sign with that cache's key or send no signature (the server signs); nothing was stored")
            }
        }
        if info.fileHash != nil || info.fileSize != nil {
            var hasher = NixHasher(.sha256)
            var size: UInt64 = 0
            for try await chunk in ConcatenatedBlobs(blobs: blobs, keys: parts) {
                size += UInt64(chunk.readableBytes)
                chunk.withUnsafeReadableBytes { hasher.update($0) }
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
        let body = ConcatenatedBlobs(blobs: blobs, keys: parts)
        let result: PathUploadResult
        do {
            result = try await self.upload(
                to: cache,
                info: PathUploadInfo(
                    storePath: info.storePath, narHash: info.narHash, narSize: info.narSize,
                    references: info.references, deriver: info.deriver),
                transit: transit, body: body)
        } catch let error as ServiceError where error.kind == .conflict {
            // The cache holds the path with another NAR: sending the parts again cannot help.
            await abortMultipartUpload(upload)
            throw error
        }
        await abortMultipartUpload(upload)
        return result
    }

    /// Discards the parts; nothing of them was visible.
    public func abortMultipartUpload(_ upload: MultipartNarUpload) async {
        do {
            for part in try await blobs.list(.parts(uploadID: upload.uploadID)) { try await blobs.delete(part.key) }
            try await blobs.delete(.upload(uploadID: upload.uploadID))
            try await store.forgetPendingUploads(uploadID: upload.uploadID)
        } catch {
            logger.warning(
                "could not remove a multipart upload", metadata: ["nar": "\(upload.narID)", "error": "\(error)"])
        }
    }

    private func partNumbers(of upload: MultipartNarUpload, declared: [(number: Int, eTag: String)]?) async throws
        -> [Int]
    {
        let stored = Set(
            try await blobs.list(.parts(uploadID: upload.uploadID)).compactMap { entry -> Int? in
                guard case .part(_, let number) = entry.key else { return nil }
                return number
            })
        guard let declared else {
            guard !stored.isEmpty else { throw ServiceError.badRequest("NAR \(upload.narID) has no uploaded parts") }
            return stored.sorted()
        }
        guard !declared.isEmpty else {
            throw ServiceError.badRequest("NAR \(upload.narID): the list of parts is empty")
        }
        for part in declared {
            guard stored.contains(part.number) else {
                throw ServiceError.badRequest("NAR \(upload.narID): part \(part.number) was never uploaded")
            }
            var md5 = NixHasher(.md5)
            for try await chunk in ConcatenatedBlobs(
                blobs: blobs, keys: [.part(uploadID: upload.uploadID, number: part.number)])
            {
                chunk.withUnsafeReadableBytes { md5.update($0) }
            }
            let eTag = part.eTag.trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased()
            guard eTag == md5.finalize().digest(.base16) else {
                throw ServiceError.badRequest(
                    "NAR \(upload.narID): part \(part.number) has ETag \(md5.finalize().digest(.base16)), not \(part.eTag)"
                )
            }
        }
        return declared.map(\.number).sorted()
    }
}

/// Blobs read one after another, as one stream of bytes.
struct ConcatenatedBlobs: AsyncSequence {
    typealias Element = ByteBuffer
    let blobs: any BlobStore
    let keys: [BlobKey]

    struct AsyncIterator: AsyncIteratorProtocol {
        let blobs: any BlobStore
        var remaining: [BlobKey]
        var current: BlobBytes.AsyncIterator?

        mutating func next() async throws -> ByteBuffer? {
            while true {
                if current == nil {
                    guard !remaining.isEmpty else { return nil }
                    let key = remaining.removeFirst()
                    guard let bytes = try await blobs.read(key) else {
                        throw ServiceError(.unavailable, "\(key) is missing from the blob store")
                    }
                    current = bytes.makeAsyncIterator()
                }
                if let chunk = try await current?.next() { return chunk }
                current = nil
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(blobs: blobs, remaining: keys, current: nil) }
}
