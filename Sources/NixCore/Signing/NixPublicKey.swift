import Crypto
import Foundation

/// An ed25519 public key as Nix names it in `trusted-public-keys`: `name:base64(32 bytes)`.
public struct NixPublicKey: Sendable, Hashable, CustomStringConvertible {
    public static let byteCount = 32

    public let name: String
    public let bytes: [UInt8]

    public init(name: String, bytes: [UInt8]) throws {
        try NamedBase64.checkName(name)
        guard bytes.count == Self.byteCount else {
            throw NixKeyError(
                subject: "public key '\(name)'",
                reason: "it has \(bytes.count) bytes, an ed25519 key has \(Self.byteCount)")
        }
        self.name = name
        self.bytes = bytes
    }

    /// Parses `name:base64`; surrounding white space (a file's trailing newline) is ignored.
    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let (name, bytes) = NamedBase64.split(trimmed) else {
            throw NixKeyError(
                subject: "public key '\(trimmed)'",
                reason: "expected 'name:base64', as nix-store --generate-binary-cache-key writes")
        }
        try self.init(name: name, bytes: bytes)
    }

    /// Reads a public key file such as the one `nix-store --generate-binary-cache-key` writes.
    public init(contentsOfFile path: String) throws {
        let text = try KeyFile.read(path, what: "public key file")
        do { try self.init(parsing: text) } catch let error as NixKeyError {
            throw NixKeyError(subject: "public key file '\(path)'", reason: error.description)
        }
    }

    /// `name:base64`, the form `trusted-public-keys` takes.
    public var rendered: String { NamedBase64.join(name, bytes) }
    public var description: String { rendered }

    /// Writes the key in Nix's form (world-readable: it is public).
    public func write(to path: String, overwrite: Bool = false) throws {
        try KeyFile.write(rendered, to: path, mode: 0o644, overwrite: overwrite, what: "public key file")
    }

    /// True when `signature` (`name:base64`) is this key's valid signature of `fingerprint`.
    public func verify(fingerprint: String, signature: String) -> Bool {
        guard let (sigName, sigBytes) = NamedBase64.split(signature), sigName == name, sigBytes.count == 64,
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: bytes)
        else { return false }
        return key.isValidSignature(sigBytes, for: Array(fingerprint.utf8))
    }
}
