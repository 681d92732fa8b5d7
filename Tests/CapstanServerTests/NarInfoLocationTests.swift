import Foundation
import Testing

@testable import CapstanServer

/// Which URLs the narinfo fast path reads, and the Date field it writes.
struct NarInfoLocationTests {
    @Test(
        arguments: [
            ("/cache/main/0c5kvnkvdfgxndcfhx7gx4rzqkgb1qlr.narinfo", "main", "0c5kvnkvdfgxndcfhx7gx4rzqkgb1qlr"),
            ("/0c5kvnkvdfgxndcfhx7gx4rzqkgb1qlr.narinfo", nil, "0c5kvnkvdfgxndcfhx7gx4rzqkgb1qlr"),
            ("/cache/a.b-c_d/x.narinfo", "a.b-c_d", "x"),
        ] as [(String, String?, String)])
    func narInfoURLs(path: String, cache: String?, hashPart: String) throws {
        let location = try #require(NarInfoLocation(path: path))
        #expect(location.cache == cache)
        #expect(location.hashPart == hashPart)
    }

    /// Left to the router: anything it might read differently, and every other file.
    @Test(
        arguments: [
            "", "/", "/.narinfo", "/cache/main/.narinfo", "/cache/main/x.narinfo/", "/cache//x.narinfo",
            "/cache/main/x.narinfo?y=1", "/cache/m%61in/x.narinfo", "/cache/main/nar/x.narinfo",
            "/CACHE/main/x.narinfo",
            "/cache/main/nix-cache-info", "/cache/main/x.nar", "/api/v1/cache/main/x.narinfo", "//x.narinfo",
            "cache/main/x.narinfo", "/x.narinfo ", "/cache/main/é.narinfo",
        ])
    func otherURLs(path: String) {
        #expect(NarInfoLocation(path: path) == nil)
    }

    @Test func dateFieldIsRFC9110() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        for seconds in [0, 784_111_777, 1_796_028_029, 951_782_400, 4_102_444_799] {
            var clock = time_t(seconds)
            #expect(
                HTTPDate.format(&clock) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))))
        }
        var date = HTTPDate()
        #expect(date.now() == formatter.string(from: Date()) || date.now() == formatter.string(from: Date()))
    }
}
