import Crypto
import Foundation

/// An ed25519 signing key in Nix's form: `name:base64(seed ‖ public key)`, 64 bytes as libsodium keeps it.
public struct NixSecretKey: Sendable, CustomStringConvertible {
    public static let byteCount = 64

    public let name: String
    /// The 32-byte seed followed by the 32-byte public key.
    public let bytes: [UInt8]
    public let publicKey: NixPublicKey
    private let signingKey: Curve25519.Signing.PrivateKey

    public init(name: String, bytes: [UInt8]) throws {
        try NamedBase64.checkName(name)
        let subject = "secret key '\(name)'"
        guard bytes.count == Self.byteCount else {
            throw NixKeyError(
                subject: subject,
                reason: "it has \(bytes.count) bytes, Nix stores \(Self.byteCount) (seed and public key)")
        }
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: bytes[0..<32]) else {
            throw NixKeyError(subject: subject, reason: "its seed is not a valid ed25519 seed")
        }
        // A mismatched second half would make Nix and Capstan publish different public keys.
        guard Array(key.publicKey.rawRepresentation) == Array(bytes[32..<64]) else {
            throw NixKeyError(
                subject: subject, reason: "its public half does not belong to its seed; the key is corrupt")
        }
        self.name = name
        self.bytes = bytes
        self.publicKey = try NixPublicKey(name: name, bytes: Array(bytes[32..<64]))
        self.signingKey = key
    }

    /// Parses `name:base64`; surrounding white space is ignored. The error never echoes the secret.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let (name, bytes) = NamedBase64.split(trimmed) else {
            let shownName = trimmed.firstIndex(of: ":").map { "'\(trimmed[..<$0])'" } ?? "(without a name)"
            throw NixKeyError(
                subject: "secret key \(shownName)",
                reason: "expected 'name:base64', as nix-store --generate-binary-cache-key writes")
        }
        try self.init(name: name, bytes: bytes)
    }

    /// Reads a secret key file such as the one `nix-store --generate-binary-cache-key` writes.
    public init(contentsOfFile path: String) throws {
        let text = try KeyFile.read(path, what: "secret key file")
        do { try self.init(parsing: text) } catch let error as NixKeyError {
            throw NixKeyError(subject: "secret key file '\(path)'", reason: error.description)
        }
    }

    /// A fresh random key.
    public static func generate(name: String) throws -> NixSecretKey {
        let key = Curve25519.Signing.PrivateKey()
        return try NixSecretKey(
            name: name, bytes: Array(key.rawRepresentation) + Array(key.publicKey.rawRepresentation))
    }

    /// `name:base64`, the content of a Nix secret key file.
    public var rendered: String { NamedBase64.join(name, bytes) }

    /// Names the key without revealing it, so a logged or interpolated key leaks nothing.
    public var description: String { "secret key '\(name)' (public \(publicKey.rendered))" }

    /// Writes the key as Nix does (no trailing newline), readable by the owner only.
    public func write(to path: String, overwrite: Bool = false) throws {
        try KeyFile.write(rendered, to: path, mode: 0o600, overwrite: overwrite, what: "secret key file")
    }

    /// Signs a narinfo fingerprint, giving the `name:base64` string for a `Sig:` line.
    public func sign(fingerprint: String) -> String {
        // Ed25519 signing with a key that loaded cannot fail; an error here is a broken crypto library.
        let signature = try! signingKey.signature(for: Array(fingerprint.utf8))
        return NamedBase64.join(name, Array(signature))
    }
}
