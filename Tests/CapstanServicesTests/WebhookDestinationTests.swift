import CapstanServices
import Testing

/// Which addresses webhooks may reach, by address and after resolving names.
@Suite struct WebhookDestinationTests {
    static let policy = WebhookDestinationPolicy()

    @Test(arguments: [
        "127.0.0.1", "127.255.0.9", "10.20.30.40", "172.16.0.1", "172.31.255.255", "192.168.0.10", "169.254.169.254",
        "100.64.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1",
        "fd00:ec2::254", "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1",
        "2001:db8::1",
    ])
    func internalAddressesAreRefused(_ text: String) throws {
        let address = try #require(IPAddress(text))
        #expect(!Self.policy.permits(address))
    }

    @Test(arguments: ["1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
    func publicAddressesArePermitted(_ text: String) throws {
        #expect(Self.policy.permits(try #require(IPAddress(text))))
    }

    @Test func allowedNetworksOpenOnlyThemselves() throws {
        let policy = WebhookDestinationPolicy(allowedNetworks: try #require(IPNetwork.list("127.0.0.0/8, 10.1.0.0/16")))
        #expect(policy.permits(try #require(IPAddress("127.0.0.1"))))
        #expect(policy.permits(try #require(IPAddress("::ffff:127.0.0.1"))))
        #expect(policy.permits(try #require(IPAddress("10.1.200.3"))))
        #expect(!policy.permits(try #require(IPAddress("10.2.0.1"))))
        #expect(!policy.permits(try #require(IPAddress("::1"))))
        #expect(!policy.permits(try #require(IPAddress("169.254.169.254"))))
    }

    @Test func networksParseInCIDRNotation() throws {
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8")
        #expect(IPNetwork("fd00::1/8")?.description == "fd00::/8")
        #expect(IPNetwork("192.168.1.1")?.description == "192.168.1.1/32")
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("example.org/8") == nil)
        #expect(IPNetwork.list("127.0.0.0/8,nonsense") == nil)
        #expect(IPNetwork.list("")?.isEmpty == true)
    }

    /// Names are judged by what they resolve to, every address of them.
    @Test func namesAreJudgedByTheirAddresses() async throws {
        await #expect(throws: WebhookDestinationPolicy.Refusal.notAllowed) {
            try await Self.policy.destination(host: "localhost")
        }
        // Decimal notation of 127.0.0.1, which getaddrinfo accepts.
        await #expect(throws: WebhookDestinationPolicy.Refusal.notAllowed) {
            try await Self.policy.destination(host: "2130706433")
        }
        await #expect(throws: WebhookDestinationPolicy.Refusal.unresolvable) {
            try await Self.policy.destination(host: "no-such-host.invalid")
        }
        let loopback = WebhookDestinationPolicy(allowedNetworks: try #require(IPNetwork.list("127.0.0.0/8, ::1/128")))
        let destination = try await loopback.destination(host: "localhost")
        #expect(["127.0.0.1", "::1"].contains(destination.address.description))
    }
}
