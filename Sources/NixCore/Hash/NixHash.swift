import Crypto
import Foundation

public enum HashAlgorithm: String, Sendable, CaseIterable, Codable {
    case md5, sha1, sha256, sha512

    public var byteCount: Int {
        switch self {
        case .md5: 16
        case .sha1: 20
        case .sha256: 32
        case .sha512: 64
        }
    }
}

public struct HashParseError: Error, CustomStringConvertible, Equatable {
    public var input: String
    public var reason: String
    public var description: String { "invalid hash '\(input)': \(reason)" }
}

/// A hash as Nix writes it: an algorithm and its digest, printable in base16, nix32, base64 or SRI.
public struct NixHash: Hashable, Sendable, CustomStringConvertible {
    public enum Encoding: String, Sendable, CaseIterable {
        case base16, nix32, base64, sri
    }

    public let algorithm: HashAlgorithm
    public let bytes: [UInt8]

    public init(algorithm: HashAlgorithm, bytes: [UInt8]) {
        precondition(bytes.count == algorithm.byteCount, "digest length does not match \(algorithm)")
        self.algorithm = algorithm
        self.bytes = bytes
    }

    /// Parses every form Nix accepts: `sha256:<base16|nix32|base64>`, SRI `sha256-<base64>`,
    /// or a bare digest when `algorithm` is given. The encoding is recognised by length.
    public init(parsing input: String, algorithm expected: HashAlgorithm? = nil) throws {
        var algorithm = expected
        var rest = Substring(input)
        var isSRI = false
        if let colon = rest.firstIndex(of: ":") {
            algorithm = try Self.algorithm(named: rest[..<colon], input: input, expected: expected)
            rest = rest[rest.index(after: colon)...]
        } else if let dash = rest.firstIndex(of: "-"), HashAlgorithm(rawValue: String(rest[..<dash])) != nil {
            algorithm = try Self.algorithm(named: rest[..<dash], input: input, expected: expected)
            rest = rest[rest.index(after: dash)...]
            isSRI = true
        }
        guard let algorithm else {
            throw HashParseError(input: input, reason: "no hash algorithm given; prefix it with 'sha256:' or use SRI 'sha256-…'")
        }
        let size = algorithm.byteCount
        let decoded: [UInt8]?
        if isSRI {
            decoded = Self.decodeBase64(rest, size: size)
            guard decoded != nil else {
                throw HashParseError(input: input, reason: "SRI digest is not valid base64 of \(size) bytes for \(algorithm)")
            }
        } else if rest.utf8.count == size * 2 {
            decoded = Base16.decode(rest)
        } else if rest.utf8.count == Nix32.encodedLength(size) {
            decoded = Nix32.decode(rest, byteCount: size)
        } else if rest.utf8.count == Self.base64Length(size) {
            decoded = Self.decodeBase64(rest, size: size)
        } else {
            throw HashParseError(
                input: input,
                reason: "wrong length \(rest.utf8.count) for \(algorithm) (expected \(size * 2) base16, "
                    + "\(Nix32.encodedLength(size)) nix32 or \(Self.base64Length(size)) base64 characters)")
        }
        guard let decoded else {
            throw HashParseError(input: input, reason: "digest contains characters outside its encoding")
        }
        self.init(algorithm: algorithm, bytes: decoded)
    }

    private static func algorithm(named name: Substring, input: String, expected: HashAlgorithm?) throws -> HashAlgorithm {
        guard let found = HashAlgorithm(rawValue: String(name)) else {
            throw HashParseError(input: input, reason: "unknown hash algorithm '\(name)'")
        }
        if let expected, expected != found {
            throw HashParseError(input: input, reason: "expected a \(expected) hash, got \(found)")
        }
        return found
    }

    private static func base64Length(_ size: Int) -> Int { (size + 2) / 3 * 4 }

    private static func decodeBase64(_ text: Substring, size: Int) -> [UInt8]? {
        guard let data = Data(base64Encoded: String(text)), data.count == size else { return nil }
        return Array(data)
    }

    /// The digest alone in the given encoding (SRI always carries its algorithm).
    public func digest(_ encoding: Encoding) -> String {
        switch encoding {
        case .base16: Base16.encode(bytes)
        case .nix32: Nix32.encode(bytes)
        case .base64, .sri: Data(bytes).base64EncodedString()
        }
    }

    /// `algo:digest` for base16/nix32/base64, `algo-base64` for SRI.
    public func encoded(_ encoding: Encoding) -> String {
        encoding == .sri ? "\(algorithm)-\(digest(.sri))" : "\(algorithm):\(digest(encoding))"
    }

    /// The form narinfo files use: `sha256:<nix32>`.
    public var narInfoString: String { encoded(.nix32) }

    public var description: String { encoded(.sri) }
}

/// Incremental hashing for any of Nix's algorithms, fed with chunks as they stream by.
public struct NixHasher: Sendable {
    private enum State: Sendable {
        case md5(Insecure.MD5)
        case sha1(Insecure.SHA1)
        case sha256(SHA256)
        case sha512(SHA512)
    }

    private var state: State
    public let algorithm: HashAlgorithm

    public init(_ algorithm: HashAlgorithm) {
        self.algorithm = algorithm
        switch algorithm {
        case .md5: state = .md5(Insecure.MD5())
        case .sha1: state = .sha1(Insecure.SHA1())
        case .sha256: state = .sha256(SHA256())
        case .sha512: state = .sha512(SHA512())
        }
    }

    public mutating func update(_ buffer: UnsafeRawBufferPointer) {
        switch state {
        case .md5(var h): h.update(bufferPointer: buffer); state = .md5(h)
        case .sha1(var h): h.update(bufferPointer: buffer); state = .sha1(h)
        case .sha256(var h): h.update(bufferPointer: buffer); state = .sha256(h)
        case .sha512(var h): h.update(bufferPointer: buffer); state = .sha512(h)
        }
    }

    public mutating func update<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        let handled: Void? = bytes.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
        if handled == nil { Array(bytes).withUnsafeBytes { update($0) } }
    }

    public func finalize() -> NixHash {
        let digest: [UInt8] =
            switch state {
            case .md5(let h): Array(h.finalize())
            case .sha1(let h): Array(h.finalize())
            case .sha256(let h): Array(h.finalize())
            case .sha512(let h): Array(h.finalize())
            }
        return NixHash(algorithm: algorithm, bytes: digest)
    }

    public static func hash<Bytes: Sequence>(_ algorithm: HashAlgorithm, _ bytes: Bytes) -> NixHash
    where Bytes.Element == UInt8 {
        var hasher = NixHasher(algorithm)
        hasher.update(bytes)
        return hasher.finalize()
    }
}
