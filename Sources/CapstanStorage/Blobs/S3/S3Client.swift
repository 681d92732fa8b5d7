import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where blobs live in an S3-compatible object store: `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`,
/// with credentials from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`. Requests use path-style
/// addressing (`ENDPOINT/BUCKET/KEY`), which every S3-compatible server accepts.
public struct S3Location: Sendable, Equatable {
    /// `http(s)://host[:port]`, without a trailing slash.
    public var endpoint: String
    public var bucket: String
    /// Prepended to every key; empty or ending in `/`.
    public var prefix: String
    public var region: String
    public var accessKey: String
    public var secretKey: String

    public init(endpoint: String, bucket: String, prefix: String, region: String, accessKey: String, secretKey: String)
    {
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix
        self.region = region
        self.accessKey = accessKey
        self.secretKey = secretKey
    }

    /// Parses the URL; the environment supplies the credentials (and `AWS_REGION` when the URL names none).
    public init(url text: String, environment: [String: String]) throws(BlobStoreError) {
        func invalid(_ reason: String) -> BlobStoreError { .invalidLocation(text, reason: reason) }
        guard let components = URLComponents(string: text), components.scheme == "s3",
            let bucket = components.host, !bucket.isEmpty
        else { throw invalid("expected s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION") }
        let parameters = Dictionary(
            (components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let known: Set = ["endpoint", "region"]
        if let unknown = parameters.keys.first(where: { !known.contains($0) }) {
            throw invalid("unknown parameter '\(unknown)'; known: endpoint, region")
        }
        let region =
            parameters["region"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        var endpoint = parameters["endpoint"] ?? "https://s3.\(region).amazonaws.com"
        while endpoint.hasSuffix("/") { endpoint.removeLast() }
        guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw invalid("endpoint '\(endpoint)' is not an http(s) URL")
        }
        guard let accessKey = environment["AWS_ACCESS_KEY_ID"], !accessKey.isEmpty,
            let secretKey = environment["AWS_SECRET_ACCESS_KEY"], !secretKey.isEmpty
        else { throw invalid("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the store's credentials") }
        var prefix = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        if !prefix.isEmpty { prefix += "/" }
        self.init(
            endpoint: endpoint, bucket: bucket, prefix: prefix, region: region, accessKey: accessKey,
            secretKey: secretKey)
    }

    /// The `host[:port]` the requests go to (and sign).
    var hostHeader: String {
        let url = URL(string: endpoint)
        let host = url?.host ?? ""
        guard let port = url?.port else { return host }
        let isDefault = (url?.scheme == "http" && port == 80) || (url?.scheme == "https" && port == 443)
        return isDefault ? host : "\(host):\(port)"
    }
}

/// The S3 requests the blob store needs, signed, over AsyncHTTPClient.
struct S3Client: Sendable {
    let location: S3Location
    let signer: S3Signer

    /// One client for the process: connections are pooled across requests, and it is never shut down.
    static let http = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(120))))

    /// Whole requests (not their bodies) must be answered within this; bodies stream for as long as they take.
    static let requestTimeout: TimeAmount = .hours(12)

    init(location: S3Location) {
        self.location = location
        signer = S3Signer(accessKey: location.accessKey, secretKey: location.secretKey, region: location.region)
    }

    /// The encoded path of an object (or of the bucket, for an empty key).
    func path(_ key: String) -> String {
        "/" + S3Signer.encode(location.bucket) + (key.isEmpty ? "/" : "/" + S3Signer.encode(key, keepSlash: true))
    }

    func makeRequest(
        _ method: HTTPMethod, key: String, query: [(String, String)] = [], headers: [String: String] = [:]
    ) -> HTTPClientRequest {
        let path = path(key)
        var toSign = headers.reduce(into: [String: String]()) { $0[$1.key.lowercased()] = $1.value }
        toSign["host"] = location.hostHeader
        let queryString = S3Signer.canonicalQuery(query)
        var request = HTTPClientRequest(
            url: location.endpoint + path + (queryString.isEmpty ? "" : "?" + queryString))
        request.method = method
        for (name, value) in toSign where name != "host" { request.headers.add(name: name, value: value) }
        for (name, value) in signer.sign(method: method.rawValue, path: path, query: query, headers: toSign) {
            request.headers.add(name: name, value: value)
        }
        return request
    }

    /// A URL that lets anyone GET the object until `expires` seconds from now.
    func presignedURL(key: String, expires: Int) -> String {
        let path = path(key)
        let query = signer.presignedQuery(method: "GET", path: path, host: location.hostHeader, expires: expires)
        return location.endpoint + path + "?" + S3Signer.canonicalQuery(query)
    }

    /// Sends the request; an answer other than 2xx (or one of `accepting`) throws with S3's error code.
    func send(_ request: HTTPClientRequest, accepting: Set<UInt> = [], what: @autoclosure () -> String) async throws
        -> HTTPClientResponse
    {
        let response: HTTPClientResponse
        do {
            response = try await Self.http.execute(request, timeout: Self.requestTimeout)
        } catch {
            throw BlobStoreError.objectStore(operation: what(), status: nil, reason: "\(error)")
        }
        let status = response.status.code
        guard (200..<300).contains(status) || accepting.contains(status) else {
            let body = (try? await response.body.collect(upTo: 1 << 16)).map { String(buffer: $0) } ?? ""
            let code = XMLText.first("Code", in: body)
            let message = XMLText.first("Message", in: body)
            throw BlobStoreError.objectStore(
                operation: what(), status: Int(status),
                reason: [code, message].compactMap { $0 }.joined(separator: ": ").nonEmpty
                    ?? response.status.reasonPhrase)
        }
        return response
    }

    /// Sends the request and reads its (small) answer whole.
    func sendForText(_ request: HTTPClientRequest, what: @autoclosure () -> String) async throws -> String {
        let operation = what()
        let response = try await send(request, what: operation)
        do {
            return String(buffer: try await response.body.collect(upTo: 16 << 20))
        } catch {
            throw BlobStoreError.objectStore(operation: operation, status: nil, reason: "reading the answer: \(error)")
        }
    }
}

/// The few elements Capstan reads from S3's XML answers, without an XML library: every answer it
/// parses is flat, machine-written and small.
enum XMLText {
    /// The text of every `<name>…</name>`, entities decoded, in order.
    static func all(_ name: String, in text: String) -> [String] {
        var results: [String] = []
        var rest = text[...]
        let open = "<\(name)>"
        let close = "</\(name)>"
        while let start = rest.range(of: open), let end = rest.range(of: close, range: start.upperBound..<rest.endIndex)
        {
            results.append(decode(String(rest[start.upperBound..<end.lowerBound])))
            rest = rest[end.upperBound...]
        }
        return results
    }

    static func first(_ name: String, in text: String) -> String? { all(name, in: text).first }

    /// The contents of each `<name>…</name>` block, undecoded, for reading its own elements.
    static func blocks(_ name: String, in text: String) -> [String] {
        var results: [String] = []
        var rest = text[...]
        while let start = rest.range(of: "<\(name)>"),
            let end = rest.range(of: "</\(name)>", range: start.upperBound..<rest.endIndex)
        {
            results.append(String(rest[start.upperBound..<end.lowerBound]))
            rest = rest[end.upperBound...]
        }
        return results
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    private static func decode(_ text: String) -> String {
        guard text.contains("&") else { return text }
        return text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
    }
}

extension String {
    fileprivate var nonEmpty: String? { isEmpty ? nil : self }
}
