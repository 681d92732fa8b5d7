import CapstanModel
import CapstanServices
import Compression
import Foundation
import Hummingbird
import NIOCore

/// The cachix cache API over `CacheService`: cache information, narinfo queries and the
/// multipart NAR upload, whose part URLs point back at this server.
struct CachixCacheRoutes: Sendable {
    let caches: CacheService
    let publicURL: String

    func register(on router: Router<CapstanRequestContext>) {
        let group = router.group("api/v1/cache/:cache")
        group.get { request, context in
            let principal = context.identity
            let cache = try await caches.readableCache(named: context.parameters.require("cache"), by: principal)
            let permission = AccessPolicy.permission(on: cache, by: principal).rawValue
            return try json(
                CachixWire.BinaryCache(
                    name: cache.name, uri: caches.hostedURL(cache), isPublic: cache.isPublic,
                    publicSigningKeys: [CachixAgentFrames.bareKey(cache.publicKey)], githubUsername: "",
                    permission: permission, preferredCompressionMethod: cache.compression == "xz" ? "XZ" : "ZSTD"))
        }
        group.head(":file") { request, context in
            let file = try context.parameters.require("file")
            guard file.hasSuffix(".narinfo") else { throw ServiceError.notFound("no such file: \(file)") }
            let cache = try await caches.readableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let present = try await caches.narInfo(in: cache, hashPart: String(file.dropLast(8))) != nil
            return Response(status: present ? .ok : .notFound)
        }
        group.post("narinfo") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let hashes = try await request.decode(as: [String].self, context: context)
            return try json(try await caches.missing(in: cache, hashes: hashes))
        }
        group.post("multipart-nar") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let compression = try CacheService.compression(
                named: String(request.uri.queryParameters["compression"] ?? "zst"), field: "compression")
            let upload = try await caches.startMultipartUpload(
                in: cache, compression: compression, by: try context.requirePrincipal())
            return try json(CachixWire.MultipartStarted(narId: upload.narID, uploadId: upload.uploadID))
        }
        group.post("multipart-nar/:nar") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let upload = try await caches.multipartUpload(
                narID: context.parameters.require("nar"), uploadID: uploadID(request), cache: cache)
            guard let number = request.uri.queryParameters["partNumber"].flatMap({ Int($0) }) else {
                throw ServiceError.badRequest("partNumber is missing or not a number")
            }
            _ = try? await request.decode(as: CachixWire.PartRequest.self, context: context)
            // Like a presigned URL, it carries its own authorisation: the upload's secret id.
            let url =
                "\(publicURL)/api/v1/cache/\(cache.name)/multipart-nar/\(upload.narID)/parts/\(number)"
                + "?uploadId=\(upload.uploadID)"
            return try json(CachixWire.PartURL(uploadUrl: url))
        }
        group.put("multipart-nar/:nar/parts/:part") { request, context in
            let upload = try await caches.multipartUploadForPart(
                narID: context.parameters.require("nar"), uploadID: uploadID(request),
                cacheName: context.parameters.require("cache"))
            guard let number = Int(try context.parameters.require("part")) else {
                throw ServiceError.badRequest("the part number must be a number")
            }
            let contentMD5 = CachixDeployRoutes.header("Content-MD5", request)
            let eTag = try await caches.storePart(
                of: upload, number: number, contentMD5: contentMD5,
                expectedSize: request.headers[.contentLength].flatMap { UInt64($0) }, body: request.body)
            return Response(status: .ok, headers: [.eTag: "\"\(eTag)\""])
        }
        group.post("multipart-nar/:nar/complete") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let upload = try await caches.multipartUpload(
                narID: context.parameters.require("nar"), uploadID: uploadID(request), cache: cache)
            let body = try await request.decode(as: CachixWire.MultipartComplete.self, context: context)
            let create = body.narInfoCreate
            let deriver = create.cDeriver.flatMap { $0.isEmpty || $0 == "unknown-deriver" ? nil : $0 }
            let result = try await caches.completeMultipartUpload(
                upload, in: cache, parts: body.parts?.map { (number: $0.partNumber, eTag: $0.eTag) },
                info: MultipartPathInfo(
                    storePath: try create.storePath(),
                    narHash: create.cNarHash, narSize: create.cNarSize, fileHash: create.cFileHash,
                    fileSize: create.cFileSize, references: create.cReferences, deriver: deriver, signature: create.cSig
                ))
            return try json(result)
        }
        group.post("multipart-nar/:nar/abort") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let upload = try await caches.multipartUpload(
                narID: context.parameters.require("nar"), uploadID: uploadID(request), cache: cache)
            await caches.abortMultipartUpload(upload)
            return try json([String: String]())
        }
    }

    private func uploadID(_ request: Request) throws -> String {
        guard let id = request.uri.queryParameters["uploadId"] else {
            throw ServiceError.badRequest("uploadId is missing")
        }
        return String(id)
    }

    private func json<Value: Encodable>(_ value: Value) throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: try CachixWire.text(value))))
    }
}
