import CapstanServices
import Foundation
import Hummingbird
import HummingbirdAuth

/// Authenticates every request once and puts the principal in the request context: a token from
/// `Authorization: Bearer <token>` or from HTTP basic auth as the password (what Nix sends from a
/// netrc file), or a dashboard session cookie on reads. A request with no credentials goes on
/// anonymous (public caches, health); one with bad credentials is refused here with 401.
///
/// A session cookie counts only for GET and HEAD, so a page of another site can never make a
/// signed-in browser change anything through the API; the dashboard's forms add their own
/// session authentication with an Origin check (`SessionAuthenticator`).
struct TokenAuthenticator<Context: AuthRequestContext<Principal>>: AuthenticatorMiddleware {
    typealias Identity = Principal
    let tokens: TokenService

    func authenticate(request: Request, context: Context) async throws -> Principal? {
        guard let header = request.headers[.authorization] else {
            // A cookie travels with cross-site requests too (a WebSocket upgrade is not covered by
            // SameSite): it counts only for reads this server's own pages make.
            guard request.method == .get || request.method == .head, Credentials.isSameOrigin(request),
                let secret = Credentials.sessionSecret(of: request)
            else { return nil }
            return try await tokens.principal(sessionSecret: secret)
        }
        guard let secret = Credentials.secret(fromAuthorization: header) else {
            throw ServiceError.unauthorized(
                "the Authorization header must be 'Bearer <token>' or basic auth with the token as password")
        }
        return try await tokens.authenticate(secret: secret)
    }
}

/// The dashboard's forms: a browser's session cookie, accepted on any method when the request
/// comes from this server's own pages (the Origin header, when sent, names this host).
struct SessionAuthenticator<Context: AuthRequestContext<Principal>>: AuthenticatorMiddleware {
    typealias Identity = Principal
    let tokens: TokenService

    func authenticate(request: Request, context: Context) async throws -> Principal? {
        if let identity = context.identity { return identity }
        guard Credentials.isSameOrigin(request), let secret = Credentials.sessionSecret(of: request) else { return nil }
        return try await tokens.principal(sessionSecret: secret)
    }
}

extension AuthRequestContext where Identity == Principal {
    /// The authenticated principal, or 401 naming how to authenticate.
    func requirePrincipal() throws -> Principal {
        guard let identity else {
            throw ServiceError.unauthorized("this call needs a token: pass --token or set CAPSTAN_TOKEN")
        }
        return identity
    }
}

/// Reading credentials off a request.
enum Credentials {
    static let sessionCookie = "capstan_session"

    static func secret(fromAuthorization header: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2 else { return nil }
        let scheme = parts[0].lowercased()
        let value = trimmingBlanks(parts[1])
        switch scheme {
        case "bearer":
            return value.isEmpty ? nil : value
        case "basic":
            guard let data = Data(base64Encoded: value), let text = String(data: data, encoding: .utf8),
                let colon = text.firstIndex(of: ":")
            else { return nil }
            let password = String(text[text.index(after: colon)...])
            return password.isEmpty ? nil : password
        default:
            return nil
        }
    }

    /// Spaces and tabs cut from both ends, in plain Swift: Foundation's `trimmingCharacters` goes
    /// through NSString on Linux and was most of the cost of authenticating a request.
    static func trimmingBlanks(_ text: Substring) -> String {
        let isBlank = { (c: Character) in c == " " || c == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }) else { return "" }
        let last = text.lastIndex(where: { !isBlank($0) })!
        return String(text[first...last])
    }

    /// The dashboard session secret from the request's cookies, if any.
    static func sessionSecret(of request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, trimmingBlanks(parts[0]) == sessionCookie else { continue }
                let value = trimmingBlanks(parts[1])
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }

    /// No Origin header (a same-origin GET or a non-browser client), or one naming this host.
    static func isSameOrigin(_ request: Request) -> Bool {
        guard let origin = request.headers[.origin] else { return true }
        guard let host = request.head.authority else { return false }
        return originMatches(origin, host: host)
    }

    /// Whether an Origin header names the host (and port) the request was sent to.
    static func originMatches(_ origin: String, host: String) -> Bool {
        guard let url = URL(string: origin), let originHost = url.host else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority.lowercased() == host.lowercased()
    }
}
