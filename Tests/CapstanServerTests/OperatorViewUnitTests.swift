import CapstanModel
import Foundation
import Testing

@testable import CapstanServer
@testable import CapstanServices

/// The parts of the operators' view that need no running server.
struct OperatorViewUnitTests {
    @Test func everyTemplateParses() throws {
        let library = try DashboardTemplates.makeLibrary()
        for name in DashboardTemplates.names { #expect(library.getTemplate(named: name) != nil, "\(name)") }
    }

    @Test func pagesEscapeWhatTheyShow() throws {
        let library = try DashboardTemplates.makeLibrary()
        let hostile = #"<script>alert("x")</script>"#
        let html =
            library.render(
                [
                    "id": "d1", "agent": hostile, "index": 1, "status": "Failed", "reason": hostile, "lines": [hostile],
                    "lineCount": 1, "createdBy": hostile,
                ], withTemplate: "deployment") ?? ""
        #expect(!html.contains("<script>alert"))
        #expect(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"))
    }

    @Test func theCachesPageSaysWhatEachCacheKeeps() {
        #expect(DashboardRoutes.keeps(nil) == "everything")
        let bounded = CacheRetention(retention: TimeSpan(.seconds(30 * 86_400)), maxSize: 50 << 30, keepGenerations: 3)
        #expect(
            DashboardRoutes.keeps(bounded)
                == "paths used in the last 720h, up to 50.0 GiB, least recently used out first; always each agent's "
                + "current configuration and last 3 successful deployments")
        let forever = CacheRetention(retention: nil, maxSize: nil, keepGenerations: 1)
        #expect(DashboardRoutes.keeps(forever).hasPrefix("every path; always"))
    }

    /// RFC 4231, test case 2.
    @Test func webhookSignatureIsHexHMACSHA256() {
        let signature = WebhookService.signature(of: Data("what do ya want for nothing?".utf8), secret: "Jefe")
        #expect(signature == "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test(arguments: [
        ("http://127.0.0.1:8080", "127.0.0.1:8080", true),
        ("http://evil.example", "127.0.0.1:8080", false),
        ("https://capstan.example.org", "capstan.example.org", true),
    ])
    func formsMustComeFromThisServer(origin: String, host: String, allowed: Bool) {
        #expect(Credentials.originMatches(origin, host: host) == allowed)
    }
}
