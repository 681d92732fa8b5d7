import Foundation
import NIOPosix

/// Where webhooks may be delivered: public addresses only, unless the operator allows a network
/// (`webhook_allow_networks`). A workspace admin chooses a webhook's URL, so without this rule any
/// admin could make the server send requests to itself, its network's services or a cloud
/// metadata endpoint. The rule is applied to the addresses a host name resolves to at the moment of
/// each delivery, and the delivery then connects to an address that was checked.
public struct WebhookDestinationPolicy: Sendable, Equatable {
    /// Networks allowed even though they are internal, e.g. `127.0.0.0/8` for a receiver on this machine.
    public var allowedNetworks: [IPNetwork]

    public init(allowedNetworks: [IPNetwork] = []) {
        self.allowedNetworks = allowedNetworks
    }

    /// Loopback, private, shared, link-local (cloud metadata at 169.254.169.254), unique-local,
    /// multicast, documentation and reserved ranges: nothing a public webhook receiver lives in.
    static let internalNetworks: [IPNetwork] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/96", "::1/128", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "2002::/16", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
    ].map { IPNetwork($0)! }

    public func permits(_ address: IPAddress) -> Bool {
        if allowedNetworks.contains(where: { $0.contains(address) }) { return true }
        // An IPv4-mapped IPv6 address reaches the IPv4 host; NAT64 (64:ff9b::/96) reaches its embedded one.
        if let mapped = address.mappedIPv4 { return permits(mapped) }
        if address.bytes.count == 16, address.bytes[0..<12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] {
            return permits(IPAddress(bytes: Array(address.bytes[12...])))
        }
        return !Self.internalNetworks.contains { $0.contains(address) }
    }

    /// A host with the address a delivery connects to.
    public struct Destination: Sendable, Equatable {
        public var host: String
        public var address: IPAddress
    }

    public enum Refusal: Error, Equatable {
        /// The host does not resolve.
        case unresolvable
        /// Every address of the host is internal and not allowed.
        case notAllowed
    }

    /// The first permitted address of `host`, resolved now. A host with any address that is not
    /// permitted is refused as a whole: a name that mixes public and internal addresses is a trap.
    public func destination(host: String) async throws(Refusal) -> Destination {
        let addresses: [IPAddress]
        if let literal = IPAddress(host) {
            addresses = [literal]
        } else {
            addresses = await Self.resolve(host)
        }
        guard let first = addresses.first else { throw .unresolvable }
        guard addresses.allSatisfy(permits) else { throw .notAllowed }
        return Destination(host: host, address: first)
    }

    /// The host's addresses (getaddrinfo, off the concurrency pool); empty when it does not resolve.
    static func resolve(_ host: String) async -> [IPAddress] {
        (try? await NIOThreadPool.singleton.runIfActive { Self.getaddrinfo(host) }) ?? []
    }

    private static func getaddrinfo(_ host: String) -> [IPAddress] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        guard Foundation.getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: [IPAddress] = []
        for entry in sequence(first: first, next: { $0.pointee.ai_next }) {
            guard let socketAddress = entry.pointee.ai_addr else { continue }
            switch Int32(socketAddress.pointee.sa_family) {
            case AF_INET:
                let address = socketAddress.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                addresses.append(IPAddress(bytes: withUnsafeBytes(of: address) { Array($0) }))
            case AF_INET6:
                let address = socketAddress.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    $0.pointee.sin6_addr
                }
                addresses.append(IPAddress(bytes: withUnsafeBytes(of: address) { Array($0) }))
            default:
                continue
            }
        }
        var seen = Set<IPAddress>()
        return addresses.filter { seen.insert($0).inserted }
    }
}
