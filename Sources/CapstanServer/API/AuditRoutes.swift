import CapstanModel
import CapstanServices
import Hummingbird

/// `GET /api/v1/audit`: the workspace's audit log, newest first (admin tokens).
struct AuditRoutes: Sendable {
    let audit: AuditLog

    func register(on router: Router<CapstanRequestContext>) {
        router.group("api/v1").get("audit") { request, context in
            try await audit.events(
                limit: request.uri.queryParameters["limit"].flatMap { Int($0) } ?? 100,
                by: context.requirePrincipal())
        }
    }
}

extension AuditEvent: ResponseEncodable {}
