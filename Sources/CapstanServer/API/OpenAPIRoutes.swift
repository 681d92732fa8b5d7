import Foundation
import Hummingbird
import NIOCore

/// `GET /api/v1/openapi.yaml`: the API's contract (`docs/openapi.yaml`), a resource of this target.
struct OpenAPIRoutes: Sendable {
    /// Read once; nil when the resource bundle is missing (then the route answers 404).
    static let document: ByteBuffer? = Bundle.module.url(forResource: "openapi", withExtension: "yaml")
        .flatMap { FileManager.default.contents(atPath: $0.path) }
        .map { ByteBuffer(bytes: $0) }

    func register(on router: Router<CapstanRequestContext>) {
        router.get("api/v1/openapi.yaml") { _, _ in
            guard let document = Self.document else { return Response(status: .notFound) }
            return Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: .init(byteBuffer: document))
        }
    }
}
