import Foundation
import TestSupport

/// A dashboard page as a browser signed in with the admin token gets it.
enum DashboardPage {
    static func fetch(_ fixture: DeployFixture, _ path: String) throws -> String {
        let jar = fixture.temp.sub("cookies-\(UUID().uuidString)")
        let token = try fixture.server.adminToken
        try ProcessRunner.run(
            [
                "curl", "-s", "-c", jar, "-o", "/dev/null", "--data-urlencode", "token=\(token)",
                fixture.server.url + "/sign-in",
            ],
            check: true)
        return try ProcessRunner.run(["curl", "-s", "-b", jar, fixture.server.url + path], check: true).stdoutString
    }
}
