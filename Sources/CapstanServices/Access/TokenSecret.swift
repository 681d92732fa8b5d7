import CapstanModel
import Foundation
import NixCore

/// Token secrets: random, shown once, stored only as their SHA-256.
public enum TokenSecret {
    /// A new secret such as `capp_…` (kind initial in the prefix so people can tell tokens apart).
    public static func generate(kind: TokenKind) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let body = Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return "cap\(kind.rawValue.prefix(2))_\(body)"
    }

    /// The value stored in the database and looked up on each request.
    public static func hash(_ secret: String) -> String {
        NixHasher.hash(.sha256, Array(secret.utf8)).digest(.base16)
    }
}
