import CapstanModel
import Hummingbird

/// `GET /api/v1/audit`: the workspace's audit log, newest first (admin tokens).
struct AuditRoutes: Sendable {
    let audit: AuditLog
    let auth: Authenticator

    func register(on router: Router<CapstanRequestContext>) {
        router.group("api/v1").get("audit") { request, _ in
            try await audit.events(
                limit: request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100,
                by: auth.requirePrincipal(for: request))
        }
    }
}

extension AuditEvent: ResponseEncodable {}
