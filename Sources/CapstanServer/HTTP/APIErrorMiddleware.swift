import CapstanModel
import Foundation
import Hummingbird
import NIOCore

/// Errors of `/api/…` in the API's one shape, `{"error": "…"}`: Hummingbird answers a body it cannot
/// decode, or a path it has no route for, with its own `{"error": {"message": …}}`.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where request.uri.path.hasPrefix("/api/") {
            var headers = error.headers
            headers[.contentType] = "application/json"
            let message = error.body ?? error.status.reasonPhrase
            let body = try JSONEncoder().encode(APIErrorBody(error: message))
            return Response(status: error.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
    }
}
