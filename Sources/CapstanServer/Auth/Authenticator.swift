import Foundation
import Hummingbird

/// Reads the token of a request: `Authorization: Bearer <token>`, or HTTP basic auth with the
/// token as password (what Nix sends from a netrc file).
public struct Authenticator: Sendable {
    let tokens: TokenService

    public init(tokens: TokenService) {
        self.tokens = tokens
    }

    static let sessionCookie = "capstan_session"

    /// nil when the request carries no credentials; an error when it carries bad ones. A dashboard
    /// session cookie counts only for reads (GET, HEAD): the API's changes need a token, so a page
    /// of another site can never make a signed-in browser change anything through the API.
    public func principal(for request: Request) async throws -> Principal? {
        guard let header = request.headers[.authorization] else {
            guard request.method == .get || request.method == .head, let secret = Self.sessionSecret(of: request)
            else { return nil }
            return try await tokens.principal(sessionSecret: secret)
        }
        guard let secret = Self.secret(fromAuthorization: header) else {
            throw ServiceError.unauthorized("the Authorization header must be 'Bearer <token>' or basic auth with the token as password")
        }
        return try await tokens.authenticate(secret: secret)
    }

    public func requirePrincipal(for request: Request) async throws -> Principal {
        guard let principal = try await principal(for: request) else {
            throw ServiceError.unauthorized("this call needs a token: pass --token or set CAPSTAN_TOKEN")
        }
        return principal
    }

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
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == sessionCookie else { continue }
                let value = parts[1].trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }
}
