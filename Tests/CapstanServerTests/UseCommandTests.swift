import Foundation
import Testing
import TestSupport

@Suite struct UseCommandTests {
    @Test func printsAndWritesNixSettings() throws {
        let temp = try TemporaryDirectory("capstan-use")
        let server = try ServerProcess(dataDirectory: temp.sub("data"))
        let admin = CapstanCLI(url: server.url, token: try server.adminToken)
        let key = try admin.createCache("public-use")
        let printed = try admin.run(["use", "public-use"]).stdoutString
        #expect(printed.contains("extra-substituters = \(server.url)/cache/public-use"))
        #expect(printed.contains("extra-trusted-public-keys = \(key)"))
        #expect(!printed.contains("netrc"))

        _ = try admin.createCache("private-use", public: false)
        let read = try admin.createToken(kind: "read", cache: "private-use")
        let conf = temp.sub("nix.conf")
        let netrc = temp.sub("netrc")
        try admin.with(token: read).run(["use", "private-use", "--write", "--nix-conf", conf, "--netrc-file", netrc])
        let written = try String(contentsOfFile: conf, encoding: .utf8)
        #expect(written.contains("extra-substituters = \(server.url)/cache/private-use"))
        #expect(written.contains("netrc-file = \(netrc)"))
        #expect(try String(contentsOfFile: netrc, encoding: .utf8).contains("password \(read)"))
        let mode = try FileManager.default.attributesOfItem(atPath: netrc)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
