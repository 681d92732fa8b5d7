import AsyncHTTPClient
import CapstanModel
import Foundation
import NIOCore
import NIOHTTP1

/// An error answer from the server, or a failure to reach it.
public struct ClientError: Error, CustomStringConvertible, Sendable {
    public var status: Int?
    public var message: String
    public var url: String

    public var description: String {
        if let status { return "\(url): HTTP \(status): \(message)" }
        return "\(url): \(message)"
    }

    /// Worth retrying: the server or network may recover (5xx, 429, connection failures).
    public var isTransient: Bool {
        guard let status else { return true }
        return status >= 500 || status == 429 || status == 408
    }
}

/// A typed client for Capstan's HTTP API.
public struct CapstanAPIClient: Sendable {
    public let baseURL: String
    public let token: String?
    let http: HTTPClient

    public init(baseURL: String, token: String?, http: HTTPClient = .shared) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.token = token
        self.http = http
    }

    // MARK: Caches

    public func createCache(_ request: CreateCacheRequest) async throws -> CacheInfo {
        try await send(.POST, "/api/v1/caches", body: request)
    }

    public func cache(named name: String) async throws -> CacheInfo {
        try await send(.GET, "/api/v1/caches/\(name)")
    }

    public func caches() async throws -> [CacheInfo] {
        try await send(.GET, "/api/v1/caches")
    }

    public func missing(cache: String, hashes: [String]) async throws -> [String] {
        try await missingPaths(cache: cache, hashes: hashes).missing
    }

    /// The hashes the cache lacks, and how long the server may hold an upload for its references.
    public func missingPaths(cache: String, hashes: [String]) async throws -> MissingPathsResponse {
        try await send(.POST, "/api/v1/caches/\(cache)/missing", body: MissingPathsRequest(hashes: hashes))
    }

    /// Streams one path's NAR, compressed with `contentEncoding`, with its declared metadata; with
    /// `awaitReferences`, the server may hold it that many seconds until its references are stored.
    public func uploadPath(
        cache: String, info: PathUploadInfo, contentEncoding: String, body: HTTPClientRequest.Body,
        awaitReferences: Int? = nil, timeout: TimeAmount = .hours(6)
    ) async throws -> PathUploadResult {
        let hashPart = info.storePath.hashPart
        var request = makeRequest(.PUT, "/api/v1/caches/\(cache)/paths/\(hashPart)")
        request.headers.add(
            name: PathUploadInfo.headerName, value: try JSONEncoder().encode(info).base64EncodedString())
        request.headers.add(name: "Content-Encoding", value: contentEncoding)
        request.headers.add(name: "Content-Type", value: "application/x-nix-nar")
        if let awaitReferences {
            request.headers.add(name: PathUploadInfo.awaitReferencesHeaderName, value: String(awaitReferences))
        }
        request.body = body
        return try await execute(request, timeout: timeout)
    }

    // MARK: Workspaces

    public func createWorkspace(name: String) async throws -> CreatedWorkspace {
        try await send(.POST, "/api/v1/workspaces", body: CreateWorkspaceRequest(name: name))
    }

    // MARK: Tokens

    public func createToken(_ request: CreateTokenRequest) async throws -> CreatedToken {
        try await send(.POST, "/api/v1/tokens", body: request)
    }

    public func tokens() async throws -> [TokenInfo] {
        try await send(.GET, "/api/v1/tokens")
    }

    public func revokeToken(id: String) async throws {
        let request = makeRequest(.DELETE, "/api/v1/tokens/\(id)")
        _ = try await executeRaw(request, timeout: .seconds(60))
    }

    // MARK: Plumbing

    public func send<Response: Decodable>(_ method: HTTPMethod, _ path: String) async throws -> Response {
        try await execute(makeRequest(method, path), timeout: .seconds(60))
    }

    public func send<Body: Encodable, Response: Decodable>(_ method: HTTPMethod, _ path: String, body: Body)
        async throws -> Response
    {
        var request = makeRequest(method, path)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder.capstan.encode(body)))
        return try await execute(request, timeout: .seconds(60))
    }

    func makeRequest(_ method: HTTPMethod, _ path: String) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: "capstan")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    func execute<Response: Decodable>(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> Response {
        let body = try await executeRaw(request, timeout: timeout)
        do {
            return try JSONDecoder.capstan.decode(Response.self, from: body)
        } catch {
            throw ClientError(status: nil, message: "unexpected answer from the server: \(error)", url: request.url)
        }
    }

    func executeRaw(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> Data {
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: timeout)
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError(status: nil, message: "cannot reach the server: \(error)", url: request.url)
        }
        let body = try await response.body.collect(upTo: 64 << 20)
        let data = Data(body.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            let message =
                (try? JSONDecoder().decode(APIErrorBody.self, from: data).error)
                ?? String(decoding: data.prefix(500), as: UTF8.self)
            throw ClientError(status: Int(response.status.code), message: message, url: request.url)
        }
        return data
    }
}
