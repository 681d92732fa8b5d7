import NIOCore

extension CapstanAPIClient {
    /// `GET /health`: throws unless the server answers 2xx within `timeoutSeconds`.
    public func health(timeoutSeconds: Int64 = 5) async throws {
        _ = try await executeRaw(makeRequest(.GET, "/health"), timeout: .seconds(timeoutSeconds))
    }
}
