import Foundation

/// Why a key or key file could not be used, with the key's name or file and what to do.
public struct NixKeyError: Error, CustomStringConvertible, Equatable, Sendable {
    public var subject: String
    public var reason: String
    public var description: String { "\(subject): \(reason)" }
}

/// The `name:base64` text form Nix uses for keys and signatures.
enum NamedBase64 {
    /// Splits at the first colon; nil when the name or the payload is missing or not base64.
    static func split(_ text: String) -> (name: String, bytes: [UInt8])? {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { return nil }
        let payload = String(text[text.index(after: colon)...])
        guard !payload.isEmpty, let data = Data(base64Encoded: payload) else { return nil }
        return (String(text[..<colon]), Array(data))
    }

    static func join(_ name: String, _ bytes: [UInt8]) -> String {
        "\(name):\(Data(bytes).base64EncodedString())"
    }

    /// A key name must be non-empty and free of ':' and white space, or Nix would split it wrongly.
    static func checkName(_ name: String) throws {
        if name.isEmpty {
            throw NixKeyError(subject: "key name", reason: "it is empty; use something like 'cache.example.org-1'")
        }
        if name.contains(":") || name.contains(where: \.isWhitespace) {
            throw NixKeyError(subject: "key name '\(name)'", reason: "it must not contain ':' or white space")
        }
    }
}
