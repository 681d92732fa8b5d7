import Foundation
import TestSupport
import Testing

/// The dashboard in a real headless Chromium, against a real server whose agents really deploy.
/// Screenshots go to $CAPSTAN_SCREENSHOTS when set (docs/images is made that way), else a temp dir.
@Suite(.serialized, .enabled(if: Browser.isAvailable, "needs Debian's chromium"))
struct DashboardTests {
    @Test func operatorsSeeTheFleetAndActOnIt() throws {
        let fixture = try DeployFixture()
        let shots = ProcessInfo.processInfo.environment["CAPSTAN_SCREENSHOTS"] ?? fixture.temp.sub("shots")
        try FileManager.default.createDirectory(atPath: shots, withIntermediateDirectories: true)
        let created = try fixture.admin.run(["token", "create", "--kind", "admin", "--label", "alice@ops", "--json"])
        let operatorToken = try #require(
            (try JSONSerialization.jsonObject(with: created.stdout) as? [String: Any])?["token"] as? String)

        // web: two good configurations, then one whose switch fails and is rolled back.
        let web = try fixture.addAgent("web")
        let marker = fixture.marker("web")
        let v1 = try fixture.configuration("web-v1", marker: marker)
        let v2 = try fixture.configuration("web-v2", marker: marker)
        #expect(try fixture.activate(try fixture.deployJSON(["web": v1])).status == 0)
        #expect(try fixture.activate(try fixture.deployJSON(["web": v2])).status == 0)
        var failing = ToyConfiguration.Options()
        failing.switchExitCode = 3
        failing.switchPrelude = "echo '<script>alert(1)</script>'"
        let broken = try fixture.configuration("web-v3", marker: marker, options: failing)
        let failedRun = try fixture.activate(try fixture.deployJSON(["web": broken]))
        #expect(failedRun.status == 1)
        let failedID = try #require(DeployFixture.deploymentIDs(failedRun.stdoutString)["web"])

        // slow: a switch that logs a line a second for a minute and a half.
        try fixture.addAgent("slow")
        var slowOptions = ToyConfiguration.Options()
        slowOptions.switchPrelude =
            "echo 'stopping the following units: app.service'; echo 'activating the configuration...'; "
            + "for n in \((1...90).map(String.init).joined(separator: " ")); do echo \"applying database migration $n of 90\"; sleep 1; done"
        let slowPath = try fixture.configuration("slow", marker: fixture.marker("slow"), options: slowOptions)
        let slowRun = try fixture.activate(try fixture.deployJSON(["slow": slowPath]), ["--async"])
        let slowID = try #require(DeployFixture.deploymentIDs(slowRun.stdoutString)["slow"], "\(slowRun.stdoutString)")

        // idle: never started, so its deployment stays pending.
        try fixture.addAgent("idle", start: false)
        let idlePath = try fixture.configuration("idle", marker: fixture.marker("idle"))
        let idleRun = try fixture.activate(try fixture.deployJSON(["idle": idlePath]), ["--async"])
        let pendingID = try #require(DeployFixture.deploymentIDs(idleRun.stdoutString)["idle"])

        let url = fixture.server.url
        let browser = try Browser(in: fixture.temp)

        // Signing in.
        try browser.open("\(url)/agents")
        #expect(browser.path == "/sign-in")
        _ = try browser.evaluate(
            "document.getElementById('token').value = \(Self.jsString(operatorToken)); document.getElementById('sign-in').click(); true"
        )
        #expect(eventually(timeout: 20) { browser.path == "/agents" }, "\(browser.path) \(browser.text)")
        #expect(try browser.string("document.cookie") == "", "the session cookie must be HttpOnly")

        var text = ""
        // The running deployment's log grows while the page is open.
        try browser.open("\(url)/deployments/\(slowID)")
        #expect(eventually(timeout: 30) { browser.text.contains("database migration") }, "\(browser.text)")
        let before = try browser.evaluate("document.getElementsByClassName('line').length") as? Int ?? 0
        #expect(
            eventually(timeout: 30) {
                (try? browser.evaluate("document.getElementsByClassName('line').length") as? Int ?? 0) ?? 0 >= before
                    + 3
            }, "the log did not grow past \(before) lines")
        #expect(!browser.text.contains("nil"), "an absent value shows as nil: \(browser.text)")
        try browser.screenshot(to: "\(shots)/deployment.png")

        // Agents.
        try browser.open("\(url)/agents")
        #expect(eventually(timeout: 20) { browser.text.contains("online") })
        text = browser.text
        for fact in ["web", "slow", "idle", "online", "offline", v2, "Failed", "alice@ops"] where !text.contains(fact) {
            Issue.record("the agents page does not show \(fact): \(text)")
        }
        try browser.screenshot(to: "\(shots)/agents.png")

        // Deployments, filtered.
        try browser.open("\(url)/deployments?agent=web&status=Failed")
        #expect(try browser.evaluate("document.querySelectorAll('tr.deployment').length") as? Int == 1)
        #expect(try browser.string("document.querySelector('tr.deployment').dataset.id") == failedID)
        try browser.open("\(url)/deployments")
        #expect(try browser.evaluate("document.querySelectorAll('tr.deployment').length") as? Int == 5)
        #expect(!browser.text.contains("nil"), "an absent value shows as nil: \(browser.text)")
        try browser.screenshot(to: "\(shots)/deployments.png")

        // The failed deployment and its timeline; markup its switch logged stays text.
        try browser.open("\(url)/deployments/\(failedID)")
        text = browser.text
        #expect(text.contains("Failed") && text.contains("rolled back"), "\(text)")
        #expect(eventually(timeout: 30) { browser.text.contains("<script>alert(1)</script>") }, "\(browser.text)")
        #expect(try browser.evaluate("document.querySelectorAll('#log script, #log *:not(span)').length") as? Int == 0)
        for id in ["created", "started", "finished", "closure-size"] {
            #expect(try browser.string("document.getElementById('\(id)').textContent") != "—", "\(id) is empty")
        }

        // Cancelling the pending deployment, after confirming.
        try browser.open("\(url)/deployments/\(pendingID)")
        _ = try browser.evaluate("document.getElementById('cancel').click(); true")
        #expect(eventually(timeout: 20) { browser.path == "/deployments/\(pendingID)/cancel" })
        _ = try browser.evaluate("document.getElementById('confirm').click(); true")
        #expect(
            eventually(timeout: 20) {
                browser.path == "/deployments/\(pendingID)" && browser.text.contains("Cancelled")
            })
        #expect(try fixture.deployment(pendingID)["status"] as? String == "Cancelled")

        // Rolling web back to its previous good configuration.
        try browser.open("\(url)/agents/web/rollback")
        _ = try browser.evaluate("document.getElementById('confirm').click(); true")
        #expect(
            eventually(timeout: 20) {
                browser.path.hasPrefix("/deployments/") && browser.path != "/agents/web/rollback"
            })
        let rollbackID = String(browser.path.dropFirst("/deployments/".count))
        #expect(eventually(timeout: 60) { (try? fixture.deployment(rollbackID)["status"] as? String) == "Succeeded" })
        #expect(web.currentProfileTarget == v1)

        // Caches, with how to use them.
        try browser.open("\(url)/caches")
        text = browser.text
        #expect(
            text.contains("fleet") && text.contains(fixture.cacheKey) && text.contains("capstan use fleet")
                && text.contains("Keeps"), "\(text)")
        try browser.screenshot(to: "\(shots)/caches.png")

        // Changing what the cache keeps; a bad value is refused with its name, and nothing changes.
        _ = try browser.evaluate("document.querySelector('[data-cache=fleet] a.settings').click(); true")
        #expect(eventually(timeout: 20) { browser.path == "/caches/fleet/settings" }, "\(browser.path)")
        _ = try browser.evaluate(
            "document.getElementById('retention').value = 'a fortnight'; document.getElementById('save').click(); true")
        #expect(
            eventually(timeout: 20) { browser.text.contains("retention 'a fortnight'") }, "\(browser.text)")
        try browser.open("\(url)/caches/fleet/settings")
        _ = try browser.evaluate(
            "document.getElementById('retention').value = '14d'; document.getElementById('max-size').value = '2G';"
                + "document.getElementById('keep-generations').value = '5'; document.getElementById('save').click(); true"
        )
        #expect(eventually(timeout: 20) { browser.path == "/caches" }, "\(browser.path)")
        let keeps = try browser.string("document.querySelector('[data-cache=fleet] .keeps').textContent")
        #expect(keeps.contains("336h") && keeps.contains("2.0 GiB") && keeps.contains("last 5"), "\(keeps)")
        let info = try fixture.admin.run(["cache", "info", "fleet", "--json"]).stdout
        let retention = (try JSONSerialization.jsonObject(with: info) as? [String: Any])?["retention"] as? [String: Any]
        #expect(retention?["maxSize"] as? Int == 2 * 1_073_741_824, "\(String(decoding: info, as: UTF8.self))")
        #expect(retention?["keepGenerations"] as? Int == 5)

        // Onboarding: an agent token and an activate token, each shown once.
        try browser.open("\(url)/agents/new")
        _ = try browser.evaluate(
            "document.getElementById('name').value = 'fresh'; document.querySelector('main form').submit(); true")
        #expect(eventually(timeout: 20) { browser.text.contains("capstan deploy agent fresh") }, "\(browser.text)")
        #expect(try browser.string("document.getElementById('agent-token').textContent").hasPrefix("capag_"))
        try browser.screenshot(to: "\(shots)/add-agent.png")
        try browser.open("\(url)/onboarding")
        _ = try browser.evaluate(
            "document.getElementById('label').value = 'ci'; document.querySelector('main form').submit(); true")
        #expect(
            eventually(timeout: 20) {
                browser.text.contains("capstan secret add default-cachix-activate --string cachixActivateToken capac_")
            }, "\(browser.text)")
        #expect(browser.text.contains("\"cachixActivateToken\": \"capac_"))

        // Every action above is in the audit log under the operator's label.
        let audit = try fixture.admin.run(["audit"]).stdoutString
        #expect(audit.contains("alice@ops\tdeployment.cancel\t\(pendingID)"), "\(audit)")
        #expect(audit.contains("alice@ops\tagent.rollback\tweb"))
        #expect(audit.contains("alice@ops\tagent.create\tfresh"))

        // A label with markup, acting and signed in, shows as text in the header and the audit log.
        let markup = try fixture.admin.run(["token", "create", "--kind", "admin", "--label", "<b>ops</b>"]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try fixture.admin.with(token: markup).run(["agent", "create", "markup"])
        _ = try browser.evaluate("document.querySelector('form.sign-out').submit(); true")
        #expect(eventually(timeout: 20) { browser.path == "/sign-in" }, "\(browser.path)")
        _ = try browser.evaluate(
            "document.getElementById('token').value = \(Self.jsString(markup)); document.getElementById('sign-in').click(); true"
        )
        #expect(eventually(timeout: 20) { browser.path != "/sign-in" }, "\(browser.path) \(browser.text)")
        try browser.open("\(url)/audit")
        #expect(eventually(timeout: 20) { browser.text.contains("agent.create") }, "\(browser.text)")
        #expect(browser.text.contains("<b>ops</b>"), "\(browser.text)")
        #expect(try browser.evaluate("document.querySelectorAll('header b').length") as? Int == 0)
        #expect(try browser.string("document.querySelectorAll('table.audit b').length.toString()") == "0")

        // Headers, and forms sent from another site.
        let head = try ProcessRunner.run(["curl", "-s", "-D", "-", "-o", "/dev/null", "\(url)/sign-in"]).stdoutString
        #expect(head.lowercased().contains("content-security-policy: default-src 'none'; script-src 'self'"), "\(head)")
        let crossSite = try ProcessRunner.run([
            "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Origin: http://evil.example",
            "--data", "token=\(operatorToken)", "\(url)/sign-in",
        ])
        #expect(crossSite.stdoutString == "403")
    }

    static func jsString(_ text: String) -> String {
        String(decoding: try! JSONSerialization.data(withJSONObject: [text]), as: UTF8.self).dropFirst().dropLast()
            .description
    }
}
