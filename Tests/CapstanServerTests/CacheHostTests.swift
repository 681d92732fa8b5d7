import CapstanServices
import Testing

/// Which cache a Host header names when caches are served on sub-domains of their own.
struct CacheHostTests {
    @Test(
        arguments: [
            ("main.cache.example.org", "main"),
            ("MAIN.Cache.Example.org:8443", "main"),
            ("fleet.localhost:9000", "fleet"),
            ("cache.example.org", nil),
            ("a.b.cache.example.org", nil),
            ("main.other.org", nil),
            ("maincache.example.org", nil),
        ] as [(String, String?)])
    func hostHeaderNamesCache(header: String, expected: String?) throws {
        let host = try #require(CacheHost("cache.example.org"))
        let local = try #require(CacheHost("localhost:9000"))
        #expect((host.cacheName(fromHostHeader: header) ?? local.cacheName(fromHostHeader: header)) == expected)
    }

    @Test func keyNameAndURLLeaveOutThePortWhereCachixDoes() throws {
        let host = try #require(CacheHost("localhost:9000"))
        #expect(host.keyName(forCache: "fleet") == "fleet.localhost-1")
        #expect(host.url(forCache: "fleet", publicURL: "http://127.0.0.1:9000") == "http://fleet.localhost:9000")
        #expect(host.url(forCache: "fleet", publicURL: "https://x") == "https://fleet.localhost:9000")
    }

    @Test(arguments: ["", "host:", "host:0", "a b", "ho/st", ".host", "host:1:2"])
    func malformedHostsAreRefused(text: String) {
        #expect(CacheHost(text) == nil)
    }
}
