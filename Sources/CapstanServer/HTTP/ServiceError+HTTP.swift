import CapstanModel
import CapstanServices
import Foundation
import Hummingbird

extension ServiceError: HTTPResponseError {
    public var status: HTTPResponse.Status {
        switch kind {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .payloadTooLarge: .contentTooLarge
        case .insufficientStorage: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .unavailable: .serviceUnavailable
        case .failedDependency: .init(code: 424, reasonPhrase: "Failed Dependency")
        }
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        // Nix (curl with a netrc) and browsers only send credentials once challenged.
        if kind == .unauthorized { headers[.wwwAuthenticate] = "Basic realm=\"capstan\"" }
        let body = try JSONEncoder().encode(APIErrorBody(error: message))
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
