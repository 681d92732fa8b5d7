/// The host under which every cache is also served on a sub-domain of its own,
/// `<cache>.<host>`, chosen by the Host header (what cachix clients use as substituter).
public struct CacheHost: Sendable, Equatable {
    /// The host name without a port, lower case: what key names and Host matching use.
    public let hostname: String
    /// `hostname` or `hostname:port`, as configured: what URLs use.
    public let authority: String

    /// nil unless `text` is a host name, optionally followed by `:PORT`.
    public init?(_ text: String) {
        let lowered = text.lowercased()
        let parts = lowered.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = parts.first, !host.isEmpty, !host.hasPrefix("."), !host.hasSuffix("."),
            host.utf8.allSatisfy({ Self.isHostByte($0) })
        else { return nil }
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
        }
        hostname = String(host)
        authority = lowered
    }

    /// The cache a request's Host header names, e.g. `main` for `main.cache.example.org:8080`.
    public func cacheName(fromHostHeader header: String) -> String? {
        var host = Substring(header.lowercased())
        if let colon = host.lastIndex(of: ":"), !host.hasSuffix("]") { host = host[..<colon] }
        let suffix = "." + hostname
        guard host.hasSuffix(suffix) else { return nil }
        let name = host.dropLast(suffix.count)
        guard !name.isEmpty, !name.contains(".") else { return nil }
        return String(name)
    }

    /// The name a cache's signing key gets, the one cachix agents trust: `<cache>.<host>-1`.
    public func keyName(forCache name: String) -> String { "\(name).\(hostname)-1" }

    /// The cache's own URL, e.g. `https://main.cache.example.org`, with the scheme of `publicURL`.
    public func url(forCache name: String, publicURL: String) -> String {
        let scheme = publicURL.hasPrefix("https:") ? "https" : "http"
        return "\(scheme)://\(name).\(authority)"
    }

    private static func isHostByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
    }
}
