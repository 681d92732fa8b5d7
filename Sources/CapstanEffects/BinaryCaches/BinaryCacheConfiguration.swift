import Foundation

/// One entry of binary-caches.json, in the Hercules CI agent's format plus Capstan's own kind.
public enum BinaryCache: Sendable, Equatable {
    case cachix(name: String, authToken: String?, publicKeys: [String], signingKeys: [String])
    case nix(name: String, storeURI: String, publicKeys: [String], signingKeys: [String])
    /// A Capstan cache: pushed to with a push token over Capstan's API.
    case capstan(name: String, url: String, cache: String, token: String)

    public var name: String {
        switch self {
        case .cachix(let name, _, _, _), .nix(let name, _, _, _), .capstan(let name, _, _, _): name
        }
    }
}

/// The binary caches file: `{ NAME: { "kind": "CachixCache" | "NixCache" | "CapstanCache", … } }`.
public struct BinaryCacheConfiguration: Sendable, Equatable {
    public var path: String
    public var caches: [BinaryCache]

    /// A missing file means no caches; a malformed entry fails with an error that names it.
    public static func load(_ path: String) throws(BinaryCacheConfigurationError) -> BinaryCacheConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            return BinaryCacheConfiguration(path: path, caches: [])
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String) throws(BinaryCacheConfigurationError)
        -> BinaryCacheConfiguration
    {
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw BinaryCacheConfigurationError(path: path, entry: nil, reason: "not valid JSON")
        }
        guard let object = json.objectValue else {
            throw BinaryCacheConfigurationError(path: path, entry: nil, reason: "expected an object of caches")
        }
        var caches: [BinaryCache] = []
        for (name, entry) in object.sorted(by: { $0.key < $1.key }) {
            do throws(EntryError) {
                caches.append(try cache(named: name, entry))
            } catch {
                throw BinaryCacheConfigurationError(path: path, entry: name, reason: error.reason)
            }
        }
        return BinaryCacheConfiguration(path: path, caches: caches)
    }

    struct EntryError: Error { var reason: String }

    private static func cache(named name: String, _ entry: JSONValue) throws(EntryError) -> BinaryCache {
        guard let fields = entry.objectValue else {
            throw EntryError(reason: "expected an object, found \(entry.typeName)")
        }
        func string(_ key: String) throws(EntryError) -> String {
            guard let value = fields[key] else { throw EntryError(reason: "\"\(key)\" is missing") }
            guard let string = value.stringValue else {
                throw EntryError(reason: "\"\(key)\" must be a string, not \(value.typeName)")
            }
            return string
        }
        func optionalString(_ key: String) throws(EntryError) -> String? {
            if fields[key] == nil || fields[key] == .null { return nil }
            return try string(key)
        }
        func strings(_ key: String, required: Bool) throws(EntryError) -> [String] {
            guard let value = fields[key] else {
                if required { throw EntryError(reason: "\"\(key)\" is missing") }
                return []
            }
            guard case .array(let items) = value, let strings = Optional(items.compactMap(\.stringValue)),
                strings.count == items.count
            else { throw EntryError(reason: "\"\(key)\" must be an array of strings") }
            return strings
        }
        switch fields["kind"] {
        case .string("CachixCache"):
            return .cachix(
                name: name, authToken: try optionalString("authToken"),
                publicKeys: try strings("publicKeys", required: true),
                signingKeys: try strings("signingKeys", required: false))
        case .string("NixCache"):
            return .nix(
                name: name, storeURI: try string("storeURI"), publicKeys: try strings("publicKeys", required: true),
                signingKeys: try strings("signingKeys", required: true))
        case .string("CapstanCache"):
            return .capstan(name: name, url: try string("url"), cache: try string("cache"), token: try string("token"))
        case nil:
            throw EntryError(reason: "\"kind\" is missing (CachixCache, NixCache or CapstanCache)")
        case let other?:
            throw EntryError(reason: "unknown kind \(other.compact) (expected CachixCache, NixCache or CapstanCache)")
        }
    }
}

public struct BinaryCacheConfigurationError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var entry: String?
    public var reason: String
    public var description: String {
        "Could not parse binary caches file \(path)" + (entry.map { ": entry \"\($0)\"" } ?? "") + ": \(reason)"
    }
}
