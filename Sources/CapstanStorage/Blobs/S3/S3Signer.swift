import Crypto
import Foundation

/// AWS Signature Version 4 for S3: the `Authorization` header of a request, or a presigned URL.
/// Bodies are not hashed (`UNSIGNED-PAYLOAD`, as S3 allows over any transport), so uploads stream.
struct S3Signer: Sendable {
    let accessKey: String
    let secretKey: String
    let region: String
    static let service = "s3"
    static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// The headers to add to a request: `x-amz-date`, `x-amz-content-sha256` and `Authorization`.
    /// `path` is the URI-encoded path, `query` the decoded query parameters, `headers` those to sign
    /// besides the ones added here (lowercase names; `host` must be among them).
    func sign(
        method: String, path: String, query: [(String, String)], headers: [String: String], date: Date = Date()
    ) -> [String: String] {
        let (amzDate, day) = Self.timestamps(date)
        var signed = headers
        signed["x-amz-date"] = amzDate
        signed["x-amz-content-sha256"] = Self.unsignedPayload
        let names = signed.keys.map { $0.lowercased() }.sorted()
        let canonicalHeaders = names.map { "\($0):\(Self.trimmed(signed[$0] ?? ""))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            method, path, Self.canonicalQuery(query), canonicalHeaders, signedHeaders, Self.unsignedPayload,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(Self.service)/aws4_request"
        let signature = self.signature(of: canonicalRequest, amzDate: amzDate, day: day, scope: scope)
        var result = [
            "x-amz-date": amzDate, "x-amz-content-sha256": Self.unsignedPayload,
        ]
        result["authorization"] =
            "AWS4-HMAC-SHA256 Credential=\(accessKey)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return result
    }

    /// The query parameters that make `method path` valid without headers until `expires` seconds
    /// after `date`. Only `host` is signed.
    func presignedQuery(
        method: String, path: String, host: String, query: [(String, String)] = [], expires: Int, date: Date = Date()
    ) -> [(String, String)] {
        let (amzDate, day) = Self.timestamps(date)
        let scope = "\(day)/\(region)/\(Self.service)/aws4_request"
        var parameters =
            query + [
                ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", "\(accessKey)/\(scope)"),
                ("X-Amz-Date", amzDate), ("X-Amz-Expires", String(expires)), ("X-Amz-SignedHeaders", "host"),
            ]
        let canonicalRequest = [
            method, path, Self.canonicalQuery(parameters), "host:\(host)\n", "host", Self.unsignedPayload,
        ].joined(separator: "\n")
        parameters.append(
            ("X-Amz-Signature", signature(of: canonicalRequest, amzDate: amzDate, day: day, scope: scope)))
        return parameters
    }

    private func signature(of canonicalRequest: String, amzDate: String, day: String, scope: String) -> String {
        let hashed = SHA256.hash(data: Data(canonicalRequest.utf8)).hex
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(hashed)"
        var key = SymmetricKey(data: Data("AWS4\(secretKey)".utf8))
        for part in [day, region, Self.service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        return Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)).hex
    }

    /// Parameters sorted by encoded name then value, each `name=value` encoded the way S3 expects.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        query.map { (encode($0.0), encode($0.1)) }.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
            .map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// RFC 3986 percent-encoding of everything but unreserved characters; with `keepSlash`, as a path.
    static func encode(_ text: String, keepSlash: Bool = false) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                result.unicodeScalars.append(UnicodeScalar(byte))
            case UInt8(ascii: "/") where keepSlash:
                result.append("/")
            default:
                result += String(format: "%%%02X", byte)
            }
        }
        return result
    }

    private static func trimmed(_ value: String) -> String {
        value.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
            .joined(separator: " ")
    }

    private static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d%02d%02d", c.year ?? 0, c.month ?? 0, c.day ?? 0)
        return (day + String(format: "T%02d%02d%02dZ", c.hour ?? 0, c.minute ?? 0, c.second ?? 0), day)
    }
}

extension Sequence where Element == UInt8 {
    fileprivate var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension SHA256.Digest {
    fileprivate var hex: String { Array(self).hex }
}
