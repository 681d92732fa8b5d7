import CapstanServices
import Logging
import NIOCore
import NIOHTTP1

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

    /// A narinfo found in memory: its text, and whether the request wants it sent (GET) or only its size (HEAD).
    struct Answer {
        var text: ByteBuffer
        var includeBody: Bool
    }

    /// The answer to `request` when memory holds it; nil sends the request to the router.
    /// `credentials` are the connection's, kept from one request to the next.
    func answer(to request: HTTPRequestHead, credentials: inout ConnectionCredentials) -> Answer? {
        let includeBody: Bool
        switch request.method {
        case .GET: includeBody = true
        case .HEAD: includeBody = false
        default: return nil
        }
        let headers = request.headers
        // A body, a session cookie (resolved through the database), anything about the connection: the router's.
        guard Self.keepsConnectionPlain(request), !headers.contains(name: "content-length"),
            !headers.contains(name: "transfer-encoding"), !headers.contains(name: "expect"),
            !headers.contains(name: "cookie"), let location = NarInfoLocation(path: request.uri)
        else { return nil }
        let cacheName: String
        if let name = location.cache {
            cacheName = name
        } else {
            let hosts = headers["host"]
            guard hosts.count == 1, let host = caches.cacheHost, let name = host.cacheName(fromHostHeader: hosts[0])
            else { return nil }
            cacheName = name
        }
        var principal: Principal?
        if let authorization = headers.first(name: "authorization") {
            guard let secretHash = credentials.secretHash(ofAuthorization: authorization),
                let remembered = tokens.rememberedPrincipal(secretHash: secretHash)
            else { return nil }
            principal = remembered
        }
        guard let text = caches.rememberedNarInfo(cacheNamed: cacheName, hashPart: location.hashPart, by: principal)
        else { return nil }
        counters.narInfoFastPath.increment()
        if includeBody { counters.narInfoBytes.increment(by: text.readableBytes) }
        // The line Hummingbird's request logging writes for every request.
        logger.debug(
            "Request",
            metadata: [
                "hb.request.path": "\(request.uri)", "hb.request.method": "\(request.method.rawValue)",
                "capstan.answered": "from memory",
            ])
        return Answer(text: text, includeBody: includeBody)
    }

    /// HTTP/1.1, no upgrade and no `Connection` other than keep-alive: Hummingbird ends the connection
    /// after a `Connection: close` request or an HTTP/1.0 one, and an upgrade changes what the connection carries.
    static func keepsConnectionPlain(_ request: HTTPRequestHead) -> Bool {
        guard request.version == .http1_1, !request.headers.contains(name: "upgrade") else { return false }
        guard let connection = request.headers.first(name: "connection") else { return true }
        return connection.lowercased() == "keep-alive"
    }
}
