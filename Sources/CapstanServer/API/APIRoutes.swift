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
            return try await caches.info(cache)
        }
        api.post("caches/:cache/missing") { request, context in
            let cache = try await caches.writableCache(
                named: context.parameters.require("cache"), by: context.identity)
            let body = try await request.decode(as: MissingPathsRequest.self, context: context)
            return MissingPathsResponse(missing: try await caches.missing(in: cache, hashes: body.hashes))
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
            info = try JSONDecoder().decode(PathUploadInfo.self, from: json)
        } catch {
            throw ServiceError.badRequest("\(PathUploadInfo.headerName) is not valid path info JSON: \(error)")
        }
        let hash = try context.parameters.require("hash")
        guard info.storePath.contains("/\(hash)-") else {
            throw ServiceError.badRequest("path info names \(info.storePath), not a path with hash \(hash)")
        }
        let encoding = request.headers[.contentEncoding] ?? "identity"
        let transit = try CacheService.compression(named: encoding, field: "Content-Encoding")
        return try await caches.upload(to: cache, info: info, transit: transit, body: request.body)
    }
}
