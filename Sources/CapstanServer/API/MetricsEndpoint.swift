import CapstanServices
import Hummingbird
import NIOCore
import Prometheus

/// `/metrics` in Prometheus' text format, from what the process keeps in memory: a scrape reads no
/// database. Served to whoever holds the metrics token, or, on the separate metrics listener
/// (`metrics_listen`) with no token set, to whoever reaches that address. A middleware ahead of
/// authentication, since the metrics token is no API token.
struct MetricsEndpoint<Context: RequestContext>: RouterMiddleware {
    let registry: PrometheusCollectorRegistry
    /// The hash of the metrics token (`TokenSecret.hash`), when one is set.
    let tokenHash: String?
    /// Whether `/metrics` is served without a token: the metrics listener with no token set.
    let openWithoutToken: Bool

    init(registry: PrometheusCollectorRegistry, token: String?, openWithoutToken: Bool) {
        self.registry = registry
        self.tokenHash = token.map(TokenSecret.hash)
        self.openWithoutToken = openWithoutToken
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard request.uri.path == "/metrics", request.method == .get || request.method == .head else {
            return try await next(request, context)
        }
        if let tokenHash {
            // Compared as hashes, so the time taken says nothing about the secret.
            guard let header = request.headers[.authorization],
                let secret = Credentials.secret(fromAuthorization: header), TokenSecret.hash(secret) == tokenHash
            else {
                return Response(
                    status: .unauthorized, headers: [.wwwAuthenticate: "Bearer", .contentType: "text/plain"],
                    body: .init(byteBuffer: ByteBuffer(string: "/metrics needs the metrics token\n")))
            }
        } else if !openWithoutToken {
            // Not served here: the same answer as any unknown path.
            return try await next(request, context)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ServerMetrics.exposition(of: registry)))
    }
}
