/// Names people choose (caches, agents, workspaces) become URL segments and host labels.
public enum ResourceName {
    /// Lowercase letters, digits and `-`, starting with a letter or digit, at most 63 characters
    /// (a DNS label, so a cache can also be served as `<name>.<host>`).
    public static func validate(_ name: String, what: String) throws(ResourceNameError) {
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty, bytes.count <= 63 else {
            throw ResourceNameError(name: name, what: what, reason: "must be 1 to 63 characters long")
        }
        let allowed = bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-")
        }
        guard allowed, bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else {
            throw ResourceNameError(
                name: name, what: what,
                reason: "use lowercase letters, digits and '-' (not at the start or end)")
        }
    }
}

public struct ResourceNameError: Error, CustomStringConvertible {
    public var name: String
    public var what: String
    public var reason: String
    public var description: String { "\(what) name '\(name)' is not valid: \(reason)" }
}
