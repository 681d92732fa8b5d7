import CapstanServices
import HTTPTypes
import Logging
import NIOCore

/// What `NarInfoFastPath` answers, from memory only: the token resolved through the tokens' memo, the
/// cache, the access check and the narinfo through `CacheService.rememberedNarInfo` (the route's own
/// rules). The response is the one `BinaryCacheRoutes` sends for a narinfo found, headers in the same
/// order, with the `Date` and `Server` fields Hummingbird adds; every other outcome is left to the route.
struct NarInfoAnswers: Sendable {
    let caches: CacheService
    let tokens: TokenService
    /// What Hummingbird sends as `Server` (its configuration's server name).
    let serverName: String?
    let logger: Logger
    /// Kept handles: a lookup in the metrics backend per request is what this path avoids.
    let counters = ServerMetrics.CacheCounters()

    struct Answer {
        var head: HTTPResponse
        var body: ByteBuffer?
    }

    /// The answer to `request` when memory holds it; nil sends the request to the router.
    func answer(to request: HTTPRequest, date: inout HTTPDate) -> Answer? {
        let includeBody: Bool
        switch request.method {
        case .get: includeBody = true
        case .head: includeBody = false
        default: return nil
        }
        let fields = request.headerFields
        // A body, a session cookie (resolved through the database), anything about the connection: the router's.
        guard Self.keepsConnectionPlain(request), fields[.contentLength] == nil, fields[.transferEncoding] == nil,
            fields[.expect] == nil, fields[.cookie] == nil,
            let path = request.path, let location = NarInfoLocation(path: path)
        else { return nil }
        let cacheName: String
        if let name = location.cache {
            cacheName = name
        } else {
            guard let host = caches.cacheHost, let name = host.cacheName(fromHostHeader: request.authority ?? "")
            else { return nil }
            cacheName = name
        }
        var principal: Principal?
        if let authorization = fields[.authorization] {
            guard let secret = Credentials.secret(fromAuthorization: authorization),
                let remembered = tokens.rememberedPrincipal(secret: secret)
            else { return nil }
            principal = remembered
        }
        guard let text = caches.rememberedNarInfo(cacheNamed: cacheName, hashPart: location.hashPart, by: principal)
        else { return nil }

        var headers: HTTPFields = [.contentType: "text/x-nix-narinfo"]
        headers[.contentLength] = String(text.readableBytes)
        headers[.date] = date.now()
        if let serverName { headers[.server] = serverName }
        counters.narInfoFastPath.increment()
        if includeBody { counters.narInfoBytes.increment(by: text.readableBytes) }
        // The line Hummingbird's request logging writes for every request.
        logger.debug(
            "Request",
            metadata: [
                "hb.request.path": "\(path)", "hb.request.method": "\(request.method.rawValue)",
                "capstan.answered": "from memory",
            ])
        return Answer(head: HTTPResponse(status: .ok, headerFields: headers), body: includeBody ? text : nil)
    }

    /// No upgrade and no `Connection` other than keep-alive: Hummingbird ends the connection after a
    /// `Connection: close` request, and an upgrade changes what the connection carries.
    static func keepsConnectionPlain(_ request: HTTPRequest) -> Bool {
        guard request.headerFields[.upgrade] == nil else { return false }
        guard let connection = request.headerFields[.connection] else { return true }
        return connection.lowercased() == "keep-alive"
    }
}
