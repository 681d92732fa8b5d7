import CapstanModel
import CapstanStorage
import Foundation

/// Dashboard sessions: a browser signs in once with a token and then carries a random cookie
/// secret. Only the secret's SHA-256 is stored; revoking the token ends its sessions.
extension TokenService {
    public static let sessionLifetime: TimeInterval = 12 * 3600

    /// Checks the token a person typed in and opens a session for it; returns the cookie secret.
    public func signIn(secret: String) async throws -> (cookie: String, principal: Principal) {
        let principal = try await authenticate(secret: secret)
        try AccessPolicy.require(.signIn, by: principal)
        let cookie = TokenSecret.generate(kind: .admin).replacingOccurrences(of: "capad_", with: "capsess_")
        let now = Date()
        try await store.insertDashboardSession(
            secretHash: TokenSecret.hash(cookie),
            DashboardSessionRecord(
                tokenID: principal.tokenID, createdAt: now, expiresAt: now.addingTimeInterval(Self.sessionLifetime)))
        logger.info("dashboard sign-in", metadata: ["token": "\(principal.tokenID)"])
        return (cookie, principal)
    }

    /// The principal of a session cookie; nil when the session is unknown, expired or its token revoked.
    public func principal(sessionSecret: String) async throws -> Principal? {
        guard let session = try await store.dashboardSession(secretHash: TokenSecret.hash(sessionSecret)),
            session.expiresAt > Date(),
            let token = try await store.token(id: session.tokenID), token.revokedAt == nil
        else { return nil }
        var principal = Principal(token: token)
        principal.expiresAt = session.expiresAt
        return principal
    }

    public func signOut(sessionSecret: String) async throws {
        try await store.deleteDashboardSession(secretHash: TokenSecret.hash(sessionSecret))
    }
}
