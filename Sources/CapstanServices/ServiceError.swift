/// A failure a service reports to its caller, with the class of problem routes map to HTTP.
public struct ServiceError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable {
        case badRequest
        case unauthorized
        case forbidden
        case notFound
        case conflict
        case payloadTooLarge
        /// A bound on space (uploads waiting to be checked) would be exceeded.
        case insufficientStorage
        case unavailable
        /// Paths the request depends on (an upload's references) are not there.
        case failedDependency
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    public static func badRequest(_ message: String) -> Self { .init(.badRequest, message) }
    public static func unauthorized(_ message: String) -> Self { .init(.unauthorized, message) }
    public static func forbidden(_ message: String) -> Self { .init(.forbidden, message) }
    public static func notFound(_ message: String) -> Self { .init(.notFound, message) }
    public static func conflict(_ message: String) -> Self { .init(.conflict, message) }
}
