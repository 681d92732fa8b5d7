import AsyncHTTPClient
import CapstanModel
import Foundation
import NIOCore

extension CapstanAPIClient {
    /// Garbage collection and verification read every path of a cache: allow them time.
    static let maintenanceTimeout: TimeAmount = .hours(6)

    public func configureCache(named name: String, _ request: ConfigureCacheRequest) async throws -> CacheInfo {
        try await send(.PATCH, "/api/v1/caches/\(name)", body: request)
    }

    public func collectGarbage(cache name: String, dryRun: Bool) async throws -> GCReport {
        let request = makeRequest(.POST, "/api/v1/caches/\(name)/gc" + (dryRun ? "?dry_run=1" : ""))
        return try await execute(request, timeout: Self.maintenanceTimeout)
    }

    public func removePaths(cache name: String, _ body: RemovePathsRequest) async throws -> GCReport {
        var request = makeRequest(.POST, "/api/v1/caches/\(name)/rm")
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONEncoder.capstan.encode(body)))
        return try await execute(request, timeout: Self.maintenanceTimeout)
    }

    /// Verifies every stored NAR of the cache; `progress` sees how far the server got as it goes.
    public func verifyCache(
        named name: String, repair: Bool, progress: @Sendable (VerifyProgress) -> Void = { _ in }
    ) async throws -> VerifyReport {
        let request = makeRequest(.POST, "/api/v1/caches/\(name)/verify" + (repair ? "?repair=1" : ""))
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: Self.maintenanceTimeout)
        } catch {
            throw ClientError(status: nil, message: "cannot reach the server: \(error)", url: request.url)
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw await ClientError(answer: response, url: request.url)
        }
        var report: VerifyReport?
        for try await event in response.body.jsonLines(of: VerifyEvent.self, url: request.url) {
            if let step = event.progress { progress(step) }
            if let final = event.report { report = final }
            if let message = event.error { throw ClientError(status: nil, message: message, url: request.url) }
        }
        guard let report else {
            throw ClientError(status: nil, message: "the verification ended without a report", url: request.url)
        }
        return report
    }
}

extension ClientError {
    /// The error an answer other than 2xx carries: the API's JSON error, else the start of its body.
    init(answer response: HTTPClientResponse, url: String) async {
        let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
        let message =
            (try? JSONDecoder().decode(APIErrorBody.self, from: body).error)
            ?? String(decoding: body.prefix(500), as: UTF8.self)
        self.init(status: Int(response.status.code), message: message, url: url)
    }
}

extension HTTPClientResponse.Body {
    /// The body as newline-delimited JSON, one value a line, decoded as the lines arrive.
    func jsonLines<T: Decodable & Sendable>(of type: T.Type, url: String) -> AsyncThrowingStream<T, any Error> {
        var iterator = makeAsyncIterator()
        var pending = Data()
        let decoder = JSONDecoder.capstan
        return AsyncThrowingStream {
            while true {
                if let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[pending.index(after: newline)...])
                    guard !line.isEmpty else { continue }
                    do {
                        return try decoder.decode(T.self, from: line)
                    } catch {
                        throw ClientError(status: nil, message: "unexpected answer from the server: \(error)", url: url)
                    }
                }
                guard let chunk = try await iterator.next() else { return nil }
                pending.append(contentsOf: chunk.readableBytesView)
            }
        }
    }
}
