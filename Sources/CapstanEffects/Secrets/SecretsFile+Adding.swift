extension SecretsFile {
    /// Adds a new secret; an existing name is never overwritten.
    public mutating func add(name: String, secret: Secret) throws(SecretEditError) {
        guard !name.isEmpty else { throw SecretEditError("a secret needs a name") }
        guard secrets[name] == nil else {
            throw SecretEditError(
                "Secret \(name) already exists in \(path); remove it from the file first to replace it")
        }
        secrets[name] = secret
    }
}

extension Secret {
    /// Sets `value` at a dotted path (`a.b.c` → `{"a":{"b":{"c":value}}}`) inside the data.
    public mutating func set(path: String, to value: JSONValue) throws(SecretEditError) {
        let keys = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !keys.contains(where: \.isEmpty) else {
            throw SecretEditError(
                "\"\(path)\" is not a path: use names separated by dots, e.g. cachixActivateToken or a.b")
        }
        data = try Self.setting(keys[...], to: value, in: data, path: path)
    }

    private static func setting(
        _ keys: ArraySlice<String>, to value: JSONValue, in object: [String: JSONValue], path: String
    ) throws(SecretEditError) -> [String: JSONValue] {
        var object = object
        let key = keys.first!
        if keys.count == 1 {
            guard object[key] == nil else { throw SecretEditError("\(path) is given twice") }
            object[key] = value
            return object
        }
        let inner: [String: JSONValue]
        switch object[key] {
        case nil: inner = [:]
        case .object(let existing): inner = existing
        default: throw SecretEditError("\(path): \(key) already holds a value that is not an object")
        }
        object[key] = .object(try setting(keys.dropFirst(), to: value, in: inner, path: path))
        return object
    }

    /// The value at a path such as `.a.b` (or `a.b`); nil when any step is missing.
    public func value(at path: String) -> JSONValue? {
        var current = JSONValue.object(data)
        for key in path.split(separator: ".") {
            guard let next = current.objectValue?[String(key)] else { return nil }
            current = next
        }
        return current
    }
}

public struct SecretEditError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
