import Foundation

/// An IPv4 or IPv6 address as its network-order bytes (4 or 16).
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    public let bytes: [UInt8]

    public var isIPv4: Bool { bytes.count == 4 }

    /// Parses dotted IPv4 (`127.0.0.1`) or IPv6 (`::1`, `[::1]`); nil for anything else.
    public init?(_ text: some StringProtocol) {
        var string = String(text)
        if string.hasPrefix("[") && string.hasSuffix("]") { string = String(string.dropFirst().dropLast()) }
        var v4 = in_addr()
        if inet_pton(AF_INET, string, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, string, &v6) == 1 {
            bytes = withUnsafeBytes(of: &v6) { Array($0) }
            return
        }
        return nil
    }

    init(bytes: [UInt8]) {
        precondition(bytes.count == 4 || bytes.count == 16, "an IP address has 4 or 16 bytes")
        self.bytes = bytes
    }

    /// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`) IPv6 address, which reaches that IPv4 host.
    public var mappedIPv4: IPAddress? {
        guard bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff else {
            return nil
        }
        return IPAddress(bytes: Array(bytes[12...]))
    }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = isIPv4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) != nil }
        return ok
            ? String(decoding: buffer.prefix(while: { $0 != 0 }).map(UInt8.init(bitPattern:)), as: UTF8.self) : "?"
    }
}

/// A network in CIDR notation: `10.0.0.0/8`, `fd00::/8`; a bare address is a network of one.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init?(_ text: some StringProtocol) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, let address = IPAddress(parts[0]) else { return nil }
        let bits = address.bytes.count * 8
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...bits).contains(length) else { return nil }
            self.init(address: address, prefixLength: length)
        } else {
            self.init(address: address, prefixLength: bits)
        }
    }

    init(address: IPAddress, prefixLength: Int) {
        // Host bits are cleared, so `10.1.2.3/8` is the network `10.0.0.0/8`.
        var bytes = address.bytes
        for index in bytes.indices {
            let kept = max(0, min(8, prefixLength - index * 8))
            bytes[index] &= kept == 0 ? 0 : ~UInt8(0) << (8 - kept)
        }
        self.address = IPAddress(bytes: bytes)
        self.prefixLength = prefixLength
    }

    public func contains(_ candidate: IPAddress) -> Bool {
        guard candidate.bytes.count == address.bytes.count else { return false }
        return IPNetwork(address: candidate, prefixLength: prefixLength).address == address
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// A comma- or space-separated list, as in `webhook_allow_networks = 127.0.0.0/8, 10.1.0.0/16`.
    public static func list(_ text: String) -> [IPNetwork]? {
        var networks: [IPNetwork] = []
        for item in text.split(whereSeparator: { $0 == "," || $0 == " " }) {
            guard let network = IPNetwork(item) else { return nil }
            networks.append(network)
        }
        return networks
    }
}
