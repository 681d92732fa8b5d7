import Foundation

/// Why a string is not a store path, naming the input so the message stands on its own.
public struct StorePathError: Error, CustomStringConvertible, Equatable, Sendable {
    public var input: String
    public var reason: String
    public var description: String { "invalid store path '\(input)': \(reason)" }
}

/// A path in the Nix store, `<storeDir>/<hashPart>-<name>`, validated by the rules Nix applies.
public struct StorePath: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    public static let defaultStoreDir = "/nix/store"
    /// Characters of the hash part: 160 bits in nix32.
    public static let hashPartLength = 32
    /// Nix's limit, leaving room for the hash part and `.drv` in a 255-byte file name.
    public static let maxNameLength = 211

    public let storeDir: String
    /// The 32 nix32 characters that identify the path.
    public let hashPart: String
    public let name: String

    /// `<hashPart>-<name>`, the form narinfo `References` and `Deriver` use.
    public var baseName: String { "\(hashPart)-\(name)" }
    /// The full path, `<storeDir>/<hashPart>-<name>`.
    public var path: String { "\(storeDir)/\(baseName)" }
    public var description: String { path }

    /// Parses a full path such as `/nix/store/<hash>-<name>`; anything below the store path is rejected.
    public init(parsing input: String, storeDir: String = StorePath.defaultStoreDir) throws {
        let dir = Self.normalised(storeDir)
        guard input.hasPrefix(dir + "/") else {
            throw StorePathError(input: input, reason: "it is not in the store directory '\(dir)'")
        }
        let base = String(input.dropFirst(dir.count + 1))
        if base.contains("/") {
            throw StorePathError(input: input, reason: "it names a file inside a store path, not a store path")
        }
        try self.init(validating: base, storeDir: dir, input: input)
    }

    /// Parses a base name `<hash>-<name>`, as narinfo `References` list them.
    public init(baseName: String, storeDir: String = StorePath.defaultStoreDir) throws {
        try self.init(validating: baseName, storeDir: Self.normalised(storeDir), input: baseName)
    }

    /// Builds a path from its parts, checking both.
    public init(hashPart: String, name: String, storeDir: String = StorePath.defaultStoreDir) throws {
        try self.init(
            validating: "\(hashPart)-\(name)", storeDir: Self.normalised(storeDir), input: "\(hashPart)-\(name)")
    }

    private init(validating base: String, storeDir: String, input: String) throws {
        let hashLength = Self.hashPartLength
        guard base.utf8.count > hashLength else {
            throw StorePathError(
                input: input, reason: "it is too short to hold a \(hashLength)-character hash and a name")
        }
        let hash = base.utf8.prefix(hashLength)
        guard Nix32.isValid(Substring(String(decoding: hash, as: UTF8.self))) else {
            throw StorePathError(
                input: input,
                reason: "its hash part '\(String(decoding: hash, as: UTF8.self))' has characters outside nix32 "
                    + "(0-9 and a-z without e, o, u, t)")
        }
        guard base.utf8.dropFirst(hashLength).first == UInt8(ascii: "-") else {
            throw StorePathError(input: input, reason: "expected '-' after the \(hashLength)-character hash part")
        }
        let name = String(decoding: base.utf8.dropFirst(hashLength + 1), as: UTF8.self)
        try Self.checkName(name, input: input)
        self.storeDir = storeDir
        self.hashPart = String(decoding: hash, as: UTF8.self)
        self.name = name
    }

    /// Applies Nix's rules for the name part; `input` is the text named in the error.
    public static func checkName(_ name: String, input: String) throws {
        if name.isEmpty {
            throw StorePathError(input: input, reason: "the name is empty")
        }
        if name.utf8.count > maxNameLength {
            throw StorePathError(input: input, reason: "the name is longer than \(maxNameLength) characters")
        }
        if name.hasPrefix(".") {
            throw StorePathError(input: input, reason: "the name '\(name)' starts with '.'")
        }
        for scalar in name.unicodeScalars where !isNameCharacter(scalar) {
            throw StorePathError(
                input: input,
                reason: "the name contains the illegal character '\(scalar)' (allowed: A-Z a-z 0-9 + - . _ ? =)")
        }
    }

    private static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "0"..."9", "a"..."z", "A"..."Z", "+", "-", ".", "_", "?", "=": true
        default: false
        }
    }

    /// The store directory without a trailing slash, so `/nix/store/` and `/nix/store` agree.
    static func normalised(_ storeDir: String) -> String {
        var dir = storeDir
        while dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        return dir
    }

    public static func < (lhs: StorePath, rhs: StorePath) -> Bool {
        (lhs.storeDir, lhs.baseName) < (rhs.storeDir, rhs.baseName)
    }

    /// Encoded as the full path. Decoding checks it against the store directory in the decoder's
    /// `userInfo[.nixStoreDir]`, or, without one, takes the store directory from the path itself.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        let dir: String
        if let required = decoder.userInfo[.nixStoreDir] as? String {
            dir = required
        } else {
            guard text.hasPrefix("/"), let slash = text.lastIndex(of: "/") else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "invalid store path '\(text)': it is not an absolute path")
            }
            dir = slash == text.startIndex ? "/" : String(text[..<slash])
        }
        do {
            try self.init(parsing: text, storeDir: dir)
        } catch let error as StorePathError {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(path)
    }
}

extension CodingUserInfoKey {
    /// The store directory every `StorePath` a decoder reads must be in.
    public static let nixStoreDir = CodingUserInfoKey(rawValue: "NixCore.storeDir")!
}
