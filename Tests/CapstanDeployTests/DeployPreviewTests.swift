import Foundation
import TestSupport
import Testing

/// `capstan deploy diff` against a real pushed closure and an agent that runs the previous one:
/// its paths and sizes checked against `nix-store -qR`, `nix path-info` and the cache's narinfos,
/// its package changes against the names built, and its count against what the agent's Nix fetched.
@Suite(.serialized) struct DeployPreviewTests {
    /// Two generations of a toy system: `web` and `libfoo` move from 1.0 to 1.1, `common-2.3` is the
    /// same path in both, `extra-0.5` is new in the second.
    static func generations(in temp: TemporaryDirectory) throws -> (v1: String, v2: String) {
        let nonce = UUID().uuidString.lowercased()
        let expression = """
            let
              \(NixFixtures.mkBinding)
              pkg = name: script: mk name ("mkdir -p $out; echo \(nonce) > $out/nonce; " + script);
              payload = bytes: "head -c ${toString bytes} /dev/urandom > $out/payload";
              common = pkg "common-2.3" (payload 30000);
              system = version: lib: extra: pkg "web-${version}" ''
                ${payload 5000}
                echo ${lib} ${common} ${extra} > $out/refs
              '';
            in {
              v1 = system "1.0" (pkg "libfoo-1.0" (payload 20000)) "";
              v2 = system "1.1" (pkg "libfoo-1.1" (payload 21000)) (pkg "extra-0.5" (payload 7000));
            }
            """
        let file = temp.sub("generations-\(nonce).nix")
        try expression.write(toFile: file, atomically: true, encoding: .utf8)
        func build(_ attribute: String) throws -> String {
            try ProcessRunner.nix(["nix-build", "--no-out-link", file, "-A", attribute]).stdoutString
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return (try build("v1"), try build("v2"))
    }

    static func closure(_ path: String) throws -> Set<String> {
        Set(try ProcessRunner.nix(["nix-store", "-qR", path]).stdoutString.split(separator: "\n").map(String.init))
    }

    static func narinfoFileSize(_ fixture: DeployFixture, _ path: String) throws -> Int64 {
        let hash = String((path as NSString).lastPathComponent.prefix(32))
        let narinfo = try ProcessRunner.run(
            ["curl", "-sf", "\(fixture.server.url)/cache/fleet/\(hash).narinfo"], check: true
        ).stdoutString
        let line = try #require(narinfo.split(separator: "\n").first { $0.hasPrefix("FileSize: ") })
        return try #require(Int64(line.dropFirst("FileSize: ".count)))
    }

    @Test func theDiffMatchesNixAndTheNarinfosOfTheClosureThatIsDownloaded() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("web")
        let (v1, v2) = try Self.generations(in: fixture.temp)
        try fixture.admin.run(["push", "fleet", v1])
        try fixture.admin.run(["push", "fleet", v2])
        let first = try fixture.activate(try fixture.deployJSON(["web": v1]))
        #expect(first.status == 0, "\(first.stdoutString)\n\(machine.log)")

        let file = try fixture.deployJSON(["web": v2])
        let output = try fixture.admin.with(token: fixture.activateToken).run(["deploy", "diff", file, "--json"]).stdout
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        let agent = try #require((object?["agents"] as? [[String: Any]])?.first, "\(object ?? [:])")

        let new = try Self.closure(v2).subtracting(try Self.closure(v1))
        #expect(new.count == 3)
        #expect(agent["current"] as? String == v1)
        #expect(agent["new"] as? String == v2)
        #expect(agent["currentClosureKnown"] as? Bool == true)
        #expect(agent["downloadPaths"] as? Int == new.count)
        #expect(agent["missingFromCache"] as? [String] == [])
        let fileSizes = try new.map { try Self.narinfoFileSize(fixture, $0) }.reduce(0, +)
        #expect((agent["downloadSize"] as? NSNumber)?.int64Value == fileSizes)
        // NAR sizes and the closure size as Nix reports them for the built paths.
        let info = try ProcessRunner.nix(["nix", "path-info", "--json", "-S", "-r", v2]).stdout
        let entries = try JSONSerialization.jsonObject(with: info) as? [[String: Any]] ?? []
        let narSize = Dictionary(
            uniqueKeysWithValues: entries.map {
                ($0["path"] as? String ?? "", ($0["narSize"] as? NSNumber)?.int64Value ?? 0)
            })
        #expect((agent["unpackedSize"] as? NSNumber)?.int64Value == new.map { narSize[$0] ?? -1 }.reduce(0, +))
        let closureSize = entries.first { $0["path"] as? String == v2 }?["closureSize"] as? NSNumber
        #expect((agent["closureSize"] as? NSNumber)?.int64Value == closureSize?.int64Value)
        #expect(agent["closurePaths"] as? Int == entries.count)

        func changes(_ key: String) -> [String] {
            (agent[key] as? [[String: Any]] ?? []).map { change in
                "\(change["name"] as? String ?? "") \((change["old"] as? [String] ?? []).joined(separator: ",")) → "
                    + (change["new"] as? [String] ?? []).joined(separator: ",")
            }
        }
        #expect(changes("changed") == ["libfoo 1.0 → 1.1", "web 1.0 → 1.1"])
        #expect(changes("added") == ["extra  → 0.5"])
        #expect(changes("removed") == [])

        let text = try fixture.admin.with(token: fixture.activateToken).run(["deploy", "diff", file]).stdoutString
        try?
            (text + "\n---\n" + String(decoding: output, as: UTF8.self) + "\n---\n"
            + String(decoding: info, as: UTF8.self) + "\nfileSizes=\(fileSizes)").write(
                toFile: "/tmp/preview-doc.txt", atomically: true, encoding: .utf8)
        #expect(text.contains("web: \(v1) → \(v2)"), "\(text)")
        #expect(text.contains("  changed:   libfoo 1.0 → 1.1"), "\(text)")
        #expect(text.contains("  added:     extra 0.5"), "\(text)")

        // Activating prints the summary first, and the agent's Nix fetches exactly those paths.
        let second = try fixture.activate(file)
        try? second.stdoutString.write(toFile: "/tmp/preview-activate.txt", atomically: true, encoding: .utf8)
        #expect(second.status == 0, "\(second.stdoutString)\n\(machine.log)")
        #expect(
            second.stdoutString.hasPrefix("web: 3 paths to download ("), "\(second.stdoutString)")
        #expect(second.stdoutString.contains("2 packages changed, 1 added, 0 removed"), "\(second.stdoutString)")
        #expect(second.stdoutString.contains("[web] these 3 paths will be fetched"), "\(second.stdoutString)")

        // The dashboard shows the same before a rollback (back to v1) or a retry (of v2) is confirmed.
        let jar = fixture.temp.sub("cookies")
        try ProcessRunner.run(
            [
                "curl", "-s", "-c", jar, "-o", "/dev/null", "--data-urlencode",
                "token=\(try fixture.server.adminToken)",
                fixture.server.url + "/sign-in",
            ], check: true)
        func page(_ path: String) throws -> String {
            try ProcessRunner.run(["curl", "-s", "-b", jar, fixture.server.url + path], check: true).stdoutString
        }
        let rollback = try page("/agents/web/rollback")
        let back = try Self.closure(v1).subtracting(try Self.closure(v2))
        let backSize = try back.map { try Self.narinfoFileSize(fixture, $0) }.reduce(0, +)
        #expect(rollback.contains("<li>\(v2) → \(v1)</li>"), "\(rollback)")
        let kib = String(format: "%.1f KiB", Double(backSize) / 1024)
        #expect(rollback.contains("<li>\(back.count) paths to download, \(kib)"), "\(rollback)")
        #expect(rollback.contains("<li>changed: libfoo 1.1 → 1.0</li>"), "\(rollback)")
        #expect(rollback.contains("<li>removed: extra 0.5</li>"), "\(rollback)")
        let secondID = try #require(DeployFixture.deploymentIDs(second.stdoutString)["web"])
        let retry = try page("/deployments/\(secondID)/retry")
        #expect(retry.contains("<li>0 paths to download, 0 B"), "\(retry)")
        #expect(!retry.contains("<li>changed:"), "\(retry)")
    }
}
