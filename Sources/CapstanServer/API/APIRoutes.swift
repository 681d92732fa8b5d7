import CapstanModel
import CapstanServices
import Compression
import Foundation
import Hummingbird
import NIOCore

/// Capstan's JSON API under `/api/v1`: caches, tokens, the push protocol.
struct APIRoutes: Sendable {
    let caches: CacheService
    let tokens: TokenService
    let workspaces: WorkspaceService

    func register(on router: Router<CapstanRequestContext>) {
        let api = router.group("api/v1")
        api.get("caches") { request, context in
            try await caches.list(by: context.requirePrincipal())
        }
        api.post("caches") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: CreateCacheRequest.self, context: context)
            return EditedResponse(status: .created, response: try await caches.create(body, by: principal))
        }
        api.get("caches/:cache") { request, context in
            let cache = try await caches.readableCache(
                named: context.parameters.require("cache"), by: context.identity)
            return try await caches.detailedInfo(cache, by: context.identity)
        }
        api.patch("caches/:cache") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: ConfigureCacheRequest.self, context: context)
            return try await caches.configure(cacheNamed: context.parameters.require("cache"), body, by: principal)
        }
        api.post("caches/:cache/gc") { request, context in
            let principal = try context.requirePrincipal()
            let dryRun = request.uri.queryParameters.get("dry_run").map { $0 == "1" || $0 == "true" } ?? false
            return try await caches.collectGarbage(
                cacheNamed: context.parameters.require("cache"), dryRun: dryRun, by: principal)
        }
        api.post("caches/:cache/verify") { request, context in
            try await verify(request, context)
        }
        api.post("caches/:cache/rm") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: RemovePathsRequest.self, context: context)
            return try await caches.removePaths(
                body, fromCacheNamed: context.parameters.require("cache"), by: principal)
        }
        api.post("caches/:cache/missing") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let body = try await request.decode(as: MissingPathsRequest.self, context: context)
            return MissingPathsResponse(
                missing: try await caches.missing(in: cache, hashes: body.hashes),
                maxReferenceWait: caches.maxReferenceWaitSeconds)
        }
        api.put("caches/:cache/paths/:hash") { request, context in
            try await uploadPath(request, context)
        }
        api.post("workspaces") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: CreateWorkspaceRequest.self, context: context)
            return EditedResponse(status: .created, response: try await workspaces.create(body, by: principal))
        }
        api.get("tokens") { request, context in
            try await tokens.list(by: context.requirePrincipal())
        }
        api.post("tokens") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: CreateTokenRequest.self, context: context)
            return EditedResponse(status: .created, response: try await tokens.create(body, by: principal))
        }
        api.delete("tokens/:id") { request, context in
            try await tokens.revoke(id: context.parameters.require("id"), by: context.requirePrincipal())
            return HTTPResponse.Status.noContent
        }
    }

    /// Streams newline-delimited JSON: progress lines while the blobs are read, then the report.
    private func verify(_ request: Request, _ context: CapstanRequestContext) async throws -> Response {
        let principal = try context.requirePrincipal()
        let cache = try await caches.managedCache(named: context.parameters.require("cache"), by: principal)
        let repair = request.uri.queryParameters.get("repair").map { $0 == "1" || $0 == "true" } ?? false
        let (lines, continuation) = AsyncStream<ByteBuffer>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let encoder = JSONEncoder.capstan
        @Sendable func line(_ event: VerifyEvent) -> ByteBuffer {
            var buffer = ByteBuffer(bytes: (try? encoder.encode(event)) ?? Data("{}".utf8))
            buffer.writeString("\n")
            return buffer
        }
        let task = Task {
            do {
                let report = try await caches.verify(cache, repair: repair, by: principal) { step in
                    continuation.yield(line(VerifyEvent(progress: step)))
                }
                continuation.yield(line(VerifyEvent(report: report)))
            } catch {
                continuation.yield(line(VerifyEvent(error: "verification of cache '\(cache.name)' failed: \(error)")))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        return Response(
            status: .ok, headers: [.contentType: "application/x-ndjson"], body: ResponseBody(asyncSequence: lines))
    }

    private func uploadPath(_ request: Request, _ context: CapstanRequestContext) async throws -> PathUploadResult {
        let cache = try await caches.writableCache(
            named: context.parameters.require("cache"), by: context.identity)
        guard let header = request.headers[.init(PathUploadInfo.headerName)!],
            let json = Data(base64Encoded: header)
        else {
            throw ServiceError.badRequest("missing \(PathUploadInfo.headerName) header (base64 of the path info JSON)")
        }
        let info: PathUploadInfo
        do {
            info = try JSONDecoder.capstan.decode(PathUploadInfo.self, from: json)
        } catch DecodingError.dataCorrupted(let context) {
            // Names the value, such as a store path that is none, rather than the decoder's internals.
            throw ServiceError.badRequest("\(PathUploadInfo.headerName): \(context.debugDescription)")
        } catch {
            throw ServiceError.badRequest("\(PathUploadInfo.headerName) is not valid path info JSON: \(error)")
        }
        let hash = try context.parameters.require("hash")
        guard info.storePath.hashPart == hash else {
            throw ServiceError.badRequest("path info names \(info.storePath), not a path with hash \(hash)")
        }
        let encoding = request.headers[.contentEncoding] ?? "identity"
        let transit = try CacheService.compression(named: encoding, field: "Content-Encoding")
        var wait: ReferenceWait?
        if let value = request.headers[.init(PathUploadInfo.awaitReferencesHeaderName)!] {
            guard let seconds = Double(value), seconds >= 0, seconds <= 86400 else {
                throw ServiceError.badRequest(
                    "\(PathUploadInfo.awaitReferencesHeaderName): '\(value)' is not a number of seconds from 0 to 86400; "
                        + "send how long the upload may wait for its references, e.g. 300")
            }
            wait = ReferenceWait(
                timeout: .milliseconds(Int64(seconds * 1000)), clientGone: await HangUpSignal.of(context.channel))
        }
        return try await caches.upload(
            to: cache, info: info, transit: transit, body: request.body, awaitingReferences: wait)
    }
}
