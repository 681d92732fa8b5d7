import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Blobs as objects of an S3-compatible store, under `<prefix><relative path of the key>`: several
/// server replicas share one bucket. A blob appears whole under its key or not at all: small ones
/// are sent in one PUT, large ones as a multipart upload to a temporary object (`tmp/<owner>/…`,
/// so staging lives in the object store too) that is copied to its key on commit. Memory stays
/// bounded by one part whatever the blob's size; reads stream with back-pressure, by range.
public struct S3BlobStore: BlobStore {
    public let location: S3Location
    /// This replica's temporary objects live under `tmp/<owner>/`.
    public let owner: String
    /// Bytes buffered before they go out as one part (S3 needs at least 5 MiB for all but the last).
    public let partSize: Int
    let client: S3Client
    let logger: Logger
    /// Temporary objects and multipart uploads untouched for longer than this are leftovers of a crash.
    public static let abandonedAfter: TimeInterval = 3600
    /// The largest object S3 copies in one request; larger ones are copied part by part.
    static let singleCopyLimit: Int64 = 5 << 30

    /// Checks that the bucket answers, then removes what interrupted writes of this owner (any
    /// owner, after an hour) left behind.
    public static func open(
        location: S3Location, owner: String, partSize: Int = 8 << 20, logger: Logger, now: Date = Date()
    ) async throws -> S3BlobStore {
        try BlobKey.validate(owner)
        let store = S3BlobStore(
            location: location, owner: owner, partSize: max(5 << 20, partSize), client: S3Client(location: location),
            logger: logger)
        _ = try await store.client.send(
            store.client.makeRequest(.HEAD, key: ""),
            what: "reaching bucket '\(location.bucket)' at \(location.endpoint)")
        try await store.removeTemporaryLeftovers(olderThan: now.addingTimeInterval(-abandonedAfter))
        return store
    }

    init(location: S3Location, owner: String, partSize: Int, client: S3Client, logger: Logger) {
        self.location = location
        self.owner = owner
        self.partSize = partSize
        self.client = client
        self.logger = logger
    }

    func objectKey(_ key: BlobKey) throws(BlobStoreError) -> String { location.prefix + (try key.relativePath()) }

    var temporaryPrefix: String { location.prefix + "tmp/\(owner)/" }

    public func makeWriter() -> any BlobWriter {
        S3BlobWriter(store: self, temporaryKey: temporaryPrefix + UUID().uuidString.lowercased())
    }

    public func size(of key: BlobKey) async throws -> Int64? {
        let objectKey = try objectKey(key)
        let response = try await client.send(
            client.makeRequest(.HEAD, key: objectKey), accepting: [404], what: "HEAD \(objectKey)")
        guard response.status != .notFound else { return nil }
        return response.headers.first(name: "content-length").flatMap(Int64.init)
    }

    public func read(_ key: BlobKey, range: Range<Int64>?) async throws -> BlobBytes? {
        let objectKey = try objectKey(key)
        if let range, range.isEmpty { return BlobBytes { $0.finish() } }
        var headers: [String: String] = [:]
        if let range { headers["range"] = "bytes=\(range.lowerBound)-\(range.upperBound - 1)" }
        let response = try await client.send(
            client.makeRequest(.GET, key: objectKey, headers: headers), accepting: [404], what: "GET \(objectKey)")
        guard response.status != .notFound else { return nil }
        let body = ResponseBodyReader(iterator: response.body.makeAsyncIterator())
        return BlobBytes(unfolding: { try await body.next() })
    }

    @discardableResult
    public func delete(_ key: BlobKey) async throws -> Bool {
        guard try await size(of: key) != nil else { return false }
        let objectKey = try objectKey(key)
        _ = try await client.send(client.makeRequest(.DELETE, key: objectKey), what: "DELETE \(objectKey)")
        return true
    }

    public func list(_ prefix: BlobPrefix) async throws -> [BlobEntry] {
        let relative: String
        switch prefix {
        case .nars: relative = "nar/"
        case .staged: relative = "staging/"
        case .uploads: relative = "multipart/"
        case .parts(let uploadID):
            try BlobKey.validate(uploadID)
            relative = "multipart/\(uploadID)/"
        }
        return try await listObjects(under: location.prefix + relative).compactMap { object in
            guard let key = BlobKey(relativePath: String(object.key.dropFirst(location.prefix.count))) else {
                return nil
            }
            switch (prefix, key) {
            case (.nars, .nar), (.staged, .staged), (.uploads, .upload), (.parts, .part):
                return BlobEntry(key: key, size: object.size, modified: object.modified)
            default:
                return nil
            }
        }
    }

    public func presignedURL(of key: BlobKey, expires: Int) -> String? {
        guard let objectKey = try? objectKey(key) else { return nil }
        return client.presignedURL(key: objectKey, expires: expires)
    }

    // MARK: Objects

    struct Object {
        var key: String
        var size: Int64
        var modified: Date
    }

    /// Every object whose key starts with `prefix`, page by page (ListObjectsV2).
    func listObjects(under prefix: String) async throws -> [Object] {
        var objects: [Object] = []
        var token: String?
        repeat {
            var query = [("list-type", "2"), ("prefix", prefix)]
            if let token { query.append(("continuation-token", token)) }
            let text = try await client.sendForText(
                client.makeRequest(.GET, key: "", query: query), what: "listing \(prefix)")
            for block in XMLText.blocks("Contents", in: text) {
                guard let key = XMLText.first("Key", in: block),
                    let size = XMLText.first("Size", in: block).flatMap(Int64.init)
                else { continue }
                let modified = XMLText.first("LastModified", in: block).flatMap(Self.parseDate) ?? Date()
                objects.append(Object(key: key, size: size, modified: modified))
            }
            token =
                XMLText.first("IsTruncated", in: text) == "true"
                ? XMLText.first("NextContinuationToken", in: text) : nil
        } while token != nil
        return objects
    }

    /// Copies an object server-side; objects over the single-copy limit part by part.
    func copy(from source: String, to destination: String, size: Int64) async throws {
        let copySource = "/" + location.bucket + "/" + S3Signer.encode(source, keepSlash: true)
        guard size > Self.singleCopyLimit else {
            let text = try await client.sendForText(
                client.makeRequest(.PUT, key: destination, headers: ["x-amz-copy-source": copySource]),
                what: "copying \(source) to \(destination)")
            // S3 may answer 200 with an error in the body of a copy.
            if let code = XMLText.first("Code", in: text) {
                throw BlobStoreError.objectStore(
                    operation: "copying \(source) to \(destination)", status: 200, reason: code)
            }
            return
        }
        let upload = try await MultipartUpload.start(key: destination, client: client)
        do {
            var offset: Int64 = 0
            var number = 1
            let step: Int64 = 1 << 30
            while offset < size {
                let end = min(offset + step, size) - 1
                let text = try await client.sendForText(
                    client.makeRequest(
                        .PUT, key: destination,
                        query: [("partNumber", String(number)), ("uploadId", upload.uploadID)],
                        headers: ["x-amz-copy-source": copySource, "x-amz-copy-source-range": "bytes=\(offset)-\(end)"]),
                    what: "copying part \(number) of \(source) to \(destination)")
                guard let eTag = XMLText.first("ETag", in: text) else {
                    throw BlobStoreError.objectStore(
                        operation: "copying part \(number) of \(source)", status: 200, reason: "no ETag in the answer")
                }
                upload.parts.append((number, eTag))
                offset = end + 1
                number += 1
            }
            try await upload.complete()
        } catch {
            await upload.abort()
            throw error
        }
    }

    /// Deletes this owner's temporary objects and multipart uploads, and any owner's older than `cutoff`.
    func removeTemporaryLeftovers(olderThan cutoff: Date) async throws {
        for object in try await listObjects(under: location.prefix + "tmp/")
        where object.key.hasPrefix(temporaryPrefix) || object.modified < cutoff {
            _ = try await client.send(
                client.makeRequest(.DELETE, key: object.key), what: "deleting leftover \(object.key)")
        }
        let text = try await client.sendForText(
            client.makeRequest(.GET, key: "", query: [("uploads", ""), ("prefix", location.prefix + "tmp/")]),
            what: "listing unfinished multipart uploads")
        for block in XMLText.blocks("Upload", in: text) {
            guard let key = XMLText.first("Key", in: block), let uploadID = XMLText.first("UploadId", in: block) else {
                continue
            }
            let initiated = XMLText.first("Initiated", in: block).flatMap(Self.parseDate) ?? .distantPast
            guard key.hasPrefix(temporaryPrefix) || initiated < cutoff else { continue }
            _ = try await client.send(
                client.makeRequest(.DELETE, key: key, query: [("uploadId", uploadID)]), accepting: [404],
                what: "aborting leftover upload of \(key)")
        }
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}

extension BlobKey {
    /// The key whose relative path this is; nil for paths no key has.
    init?(relativePath: String) {
        let parts = relativePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        let key: BlobKey
        switch (parts.first, parts.count) {
        case ("nar", 2): key = .nar(parts[1])
        case ("staging", 3): key = .staged(cacheID: parts[1], fileName: parts[2])
        case ("multipart", 3) where parts[2] == "upload.json": key = .upload(uploadID: parts[1])
        case ("multipart", 3) where parts[2].hasPrefix("part-"):
            guard let number = Int(parts[2].dropFirst(5)) else { return nil }
            key = .part(uploadID: parts[1], number: number)
        default: return nil
        }
        guard (try? key.relativePath()) == relativePath else { return nil }
        self = key
    }
}

/// A response body read chunk by chunk as the consumer asks (one task at a time).
final class ResponseBodyReader: @unchecked Sendable {
    private var iterator: HTTPClientResponse.Body.AsyncIterator

    init(iterator: HTTPClientResponse.Body.AsyncIterator) { self.iterator = iterator }

    func next() async throws -> ByteBuffer? { try await iterator.next() }
}

/// One multipart upload in progress: its id and the parts sent so far.
final class MultipartUpload: @unchecked Sendable {
    let key: String
    let uploadID: String
    let client: S3Client
    var parts: [(number: Int, eTag: String)] = []

    private init(key: String, uploadID: String, client: S3Client) {
        self.key = key
        self.uploadID = uploadID
        self.client = client
    }

    static func start(key: String, client: S3Client) async throws -> MultipartUpload {
        let text = try await client.sendForText(
            client.makeRequest(.POST, key: key, query: [("uploads", "")]), what: "starting a multipart upload of \(key)"
        )
        guard let uploadID = XMLText.first("UploadId", in: text) else {
            throw BlobStoreError.objectStore(
                operation: "starting a multipart upload of \(key)", status: 200, reason: "no UploadId in the answer")
        }
        return MultipartUpload(key: key, uploadID: uploadID, client: client)
    }

    func upload(part bytes: ByteBuffer) async throws {
        let number = parts.count + 1
        let response = try await Self.retrying {
            // Signed anew for each attempt: a signature carries its time.
            var request = client.makeRequest(
                .PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                headers: ["content-length": String(bytes.readableBytes)])
            request.body = .bytes(bytes)
            return try await client.send(request, what: "uploading part \(number) of \(key)")
        }
        guard let eTag = response.headers.first(name: "etag") else {
            throw BlobStoreError.objectStore(
                operation: "uploading part \(number) of \(key)", status: Int(response.status.code),
                reason: "no ETag in the answer")
        }
        parts.append((number, eTag))
    }

    /// Makes the object appear whole under its key.
    func complete() async throws {
        let body =
            "<CompleteMultipartUpload>"
            + parts.map {
                "<Part><PartNumber>\($0.number)</PartNumber><ETag>\(XMLText.escape($0.eTag))</ETag></Part>"
            }.joined() + "</CompleteMultipartUpload>"
        var request = client.makeRequest(
            .POST, key: key, query: [("uploadId", uploadID)], headers: ["content-type": "application/xml"])
        request.body = .bytes(ByteBuffer(string: body))
        let text = try await client.sendForText(request, what: "completing the multipart upload of \(key)")
        if let code = XMLText.first("Code", in: text) {
            throw BlobStoreError.objectStore(
                operation: "completing the multipart upload of \(key)", status: 200, reason: code)
        }
    }

    func abort() async {
        _ = try? await client.send(
            client.makeRequest(.DELETE, key: key, query: [("uploadId", uploadID)]), accepting: [404],
            what: "aborting the multipart upload of \(key)")
    }
}

extension MultipartUpload {
    /// Object stores answer 500 and 503 now and then and expect the request again (as S3's own
    /// clients do): a part is sent up to four times, a little later each time. Other errors are final.
    static func retrying<R>(_ operation: () async throws -> R) async throws -> R {
        var attempt = 1
        while true {
            do {
                return try await operation()
            } catch BlobStoreError.objectStore(_, let status, _) where attempt < 4 && (status ?? 500) >= 500 {
                try await Task.sleep(for: .milliseconds(250 * attempt))
                attempt += 1
            }
        }
    }
}
