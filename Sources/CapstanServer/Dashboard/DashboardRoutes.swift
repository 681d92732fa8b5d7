import CapstanModel
import CapstanServices
import Foundation
import Hummingbird
import Logging
import Mustache
import NIOCore

/// The operators' web dashboard: server-rendered pages over the same services as the API. A person
/// signs in with a token; the browser then carries a session cookie (HttpOnly, SameSite=Strict).
struct DashboardRoutes: Sendable {
    let deploy: DeployService
    let caches: CacheService
    let tokens: TokenService
    let assets: DashboardAssets
    let publicURL: String
    let library: MustacheLibrary
    let logger: Logger

    /// No inline script or style, nothing from elsewhere, no framing.
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

    func register(on router: Router<CapstanRequestContext>) {
        let router = router.group().add(middleware: SessionAuthenticator<CapstanRequestContext>(tokens: tokens))
        router.get("/") { _, _ in Self.redirect("/agents") }
        router.get("static/:file") { _, context in try asset(context.parameters.require("file")) }
        router.get("sign-in") { _, _ in page("sign-in", title: "Sign in", [:], actor: nil) }
        router.post("sign-in") { request, context in try await signIn(request, context) }
        router.post("sign-out") { request, context in try await signOut(request) }

        router.get("agents") { request, context in
            try await signedIn(context) { principal in
                let agents = try await deploy.agents(by: principal).map(agentView)
                return page(
                    "agents", title: "Agents", ["agents": agents, "hasAgents": !agents.isEmpty], actor: principal)
            }
        }
        router.get("agents/new") { request, context in
            try await signedIn(context) { principal in page("agent-new", title: "Add an agent", [:], actor: principal) }
        }
        router.post("agents/new") { request, context in
            try await signedInForm(request, context) { principal, form in
                let name = form["name"] ?? ""
                do {
                    let created = try await deploy.createAgent(CreateAgentRequest(name: name), by: principal)
                    return page(
                        "agent-created", title: "Agent \(name) added",
                        ["name": created.agent.name, "token": created.token, "serverURL": publicURL], actor: principal,
                        noStore: true)
                } catch let error as ServiceError {
                    return page(
                        "agent-new", title: "Add an agent", ["error": error.message], actor: principal,
                        status: error.status)
                }
            }
        }
        router.get("agents/:name/rollback") { request, context in
            try await signedIn(context) { principal in
                let name = try context.parameters.require("name")
                // No preview when there is nothing to roll back to: the form then says why.
                let preview = try? await deploy.previewRollback(agentName: name, by: principal)
                return page(
                    "confirm", title: "Roll back \(name)",
                    Self.present([
                        "question": "Roll \(name) back?",
                        "explanation":
                            "This deploys \(name)'s previous successful configuration again, as a new deployment.",
                        "action": "/agents/\(name)/rollback", "button": "Yes, roll back \(name)", "back": "/agents",
                        "preview": preview.map(Self.previewLines), "hasPreview": preview != nil,
                    ]), actor: principal)
            }
        }
        router.post("agents/:name/rollback") { request, context in
            try await signedInForm(request, context) { principal, _ in
                let created = try await deploy.rollback(agentName: context.parameters.require("name"), by: principal)
                return Self.redirect("/deployments/\(created.id)")
            }
        }

        router.get("deployments") { request, context in try await deploymentList(request, context) }
        router.get("deployments/:id") { request, context in
            try await signedIn(context) { principal in
                let id = try context.parameters.require("id")
                let info = try await deploy.deployment(id: id, by: principal)
                // A page of the log (the newest by default): a long log is never loaded whole.
                let after = request.uri.queryParameters["after"].flatMap { Int($0) }
                let logPage = try await deploy.logPage(id: id, after: after, by: principal)
                let shownUpTo = logPage.after + logPage.lines.count
                var view = deploymentView(info)
                view["lines"] = logPage.lines.map(\.line)
                view["lineCount"] = shownUpTo
                view["totalLines"] = logPage.total
                if logPage.after > 0 { view["earlier"] = "/deployments/\(id)?after=\(max(0, logPage.after - 1000))" }
                if shownUpTo < logPage.total { view["later"] = "/deployments/\(id)?after=\(shownUpTo)" }
                view["following"] = !info.status.isFinal && shownUpTo >= logPage.total
                view["canCancel"] = info.status == .pending || info.status == .inProgress
                view["hasChecks"] = !(info.checks ?? []).isEmpty
                view["checks"] = (info.checks ?? []).map { result -> [String: Any] in
                    [
                        "check": result.check, "result": result.passed ? "passed" : "failed",
                        "attempts": result.attempts, "output": result.output.joined(separator: "\n"),
                    ]
                }
                view["canRetry"] = info.status.isFinal
                if let rollout = info.rollout {
                    view["rollout"] = ["id": rollout, "wave": (info.wave ?? 0) + 1]
                }
                return page("deployment", title: "Deployment #\(info.index) of \(info.agent)", view, actor: principal)
            }
        }
        for (action, verb, button) in [
            ("cancel", "Cancel", "Yes, cancel it"), ("retry", "Retry", "Yes, deploy it again"),
        ] {
            router.get("deployments/:id/\(action)") { request, context in
                try await signedIn(context) { principal in
                    let id = try context.parameters.require("id")
                    let info = try await deploy.deployment(id: id, by: principal)
                    let preview = action == "retry" ? try? await deploy.previewRetry(id: id, by: principal) : nil
                    return page(
                        "confirm", title: button,
                        Self.present([
                            "question": "\(verb) deployment #\(info.index) of \(info.agent)?",
                            "explanation": action == "cancel"
                                ? "A pending deployment never runs. A running one is stopped by its agent, which rolls "
                                    + "back if it has already switched; a finished one can no longer be cancelled."
                                : "This creates a new deployment of the same store path to \(info.agent).",
                            "action": "/deployments/\(id)/\(action)", "button": button, "back": "/deployments/\(id)",
                            "preview": preview.map(Self.previewLines), "hasPreview": preview != nil,
                        ]), actor: principal)
                }
            }
            router.post("deployments/:id/\(action)") { request, context in
                try await signedInForm(request, context) { principal, _ in
                    let id = try context.parameters.require("id")
                    let result: DeploymentInfo
                    if action == "cancel" {
                        result = try await deploy.cancel(id: id, by: principal)
                    } else {
                        result = try await deploy.retry(id: id, by: principal)
                    }
                    return Self.redirect("/deployments/\(result.id)")
                }
            }
        }

        registerRollouts(on: router)

        router.get("caches") { request, context in
            try await signedIn(context) { principal in
                let managed = try await caches.managedCacheNames(by: principal)
                let list = try await caches.list(by: principal).map { cache in
                    var view = cacheView(cache)
                    view["manages"] = managed.contains(cache.name)
                    return view
                }
                return page("caches", title: "Caches", ["caches": list], actor: principal)
            }
        }
        router.get("caches/:name/settings") { request, context in
            try await signedIn(context) { principal in
                let cache = try await caches.managedCache(named: context.parameters.require("name"), by: principal)
                return page(
                    "cache-settings", title: "What \(cache.name) keeps",
                    [
                        "name": cache.name,
                        "retention": cache.retentionSeconds.map { TimeSpan.seconds($0).description } ?? "forever",
                        "maxSize": cache.maxSize.map(Self.editableSize) ?? "unlimited",
                        "keepGenerations": cache.keepGenerations,
                    ], actor: principal)
            }
        }
        router.post("caches/:name/settings") { request, context in
            try await signedInForm(request, context) { principal, form in
                let name = try context.parameters.require("name")
                let generations = try form["keepGenerations"].map { text in
                    guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
                        throw ServiceError.badRequest("rollback targets kept per agent '\(text)': expected a number")
                    }
                    return value
                }
                _ = try await caches.configure(
                    cacheNamed: name,
                    ConfigureCacheRequest(
                        retention: Self.filled(form["retention"]), maxSize: Self.filled(form["maxSize"]),
                        keepGenerations: generations), by: principal)
                return Self.redirect("/caches#cache-\(name)")
            }
        }
        router.get("audit") { request, context in
            try await signedIn(context) { principal in
                let formatter = ISO8601DateFormatter()
                let events = try await deploy.audit.events(limit: 200, by: principal)
                    .map { event -> [String: Any] in
                        var view: [String: Any] = ["time": formatter.string(from: event.time), "action": event.action]
                        view["actor"] = event.actor ?? event.actorTokenID ?? "—"
                        if let target = event.target { view["target"] = target }
                        if let detail = event.detail { view["detail"] = detail }
                        return view
                    }
                return page(
                    "audit", title: "Audit log", ["events": events, "hasEvents": !events.isEmpty], actor: principal)
            }
        }
        router.get("onboarding") { request, context in
            try await signedIn(context) { principal in page("onboarding", title: "Get started", [:], actor: principal) }
        }
        router.post("onboarding/activate-token") { request, context in
            try await signedInForm(request, context) { principal, form in
                let label = (form["label"] ?? "").trimmingCharacters(in: .whitespaces)
                do {
                    let created = try await tokens.create(
                        CreateTokenRequest(kind: .activate, label: label.isEmpty ? nil : label), by: principal)
                    return page(
                        "activate-token", title: "Activate token",
                        ["label": label, "token": created.token, "serverURL": publicURL], actor: principal,
                        noStore: true)
                } catch let error as ServiceError {
                    return page(
                        "onboarding", title: "Get started", ["error": error.message], actor: principal,
                        status: error.status)
                }
            }
        }
    }

    // MARK: Pages

    private func deploymentList(_ request: Request, _ context: CapstanRequestContext) async throws -> Response {
        try await signedIn(context) { principal in
            let query = request.uri.queryParameters
            let agentName = query["agent"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
            let status = query["status"].flatMap { DeploymentStatus(rawValue: String($0)) }
            let list = try await deploy.deployments(agentName: agentName, status: status, limit: 200, by: principal)
                .map(deploymentView)
            let agentNames = try await deploy.agents(by: principal).map(\.name)
            return page(
                "deployments", title: "Deployments",
                [
                    "deployments": list, "hasDeployments": !list.isEmpty,
                    "agentOptions": agentNames.map { ["name": $0, "selected": $0 == agentName] as [String: Any] },
                    "statusOptions": DeploymentStatus.allCases.map {
                        ["name": $0.rawValue, "selected": $0 == status] as [String: Any]
                    },
                ], actor: principal)
        }
    }

    private func signIn(_ request: Request, _ context: CapstanRequestContext) async throws -> Response {
        guard Credentials.isSameOrigin(request) else { return forbiddenCrossSite() }
        let form = try await Self.form(request, context)
        do {
            let (cookie, _) = try await tokens.signIn(
                secret: (form["token"] ?? "").trimmingCharacters(in: .whitespaces))
            var response = Self.redirect("/agents")
            response.headers[.setCookie] =
                "\(Credentials.sessionCookie)=\(cookie); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(TokenService.sessionLifetime))"
                + (publicURL.hasPrefix("https://") ? "; Secure" : "")
            return response
        } catch let error as ServiceError {
            return page("sign-in", title: "Sign in", ["error": error.message], actor: nil, status: .unauthorized)
        }
    }

    private func signOut(_ request: Request) async throws -> Response {
        guard Credentials.isSameOrigin(request) else { return forbiddenCrossSite() }
        if let secret = Credentials.sessionSecret(of: request) { try await tokens.signOut(sessionSecret: secret) }
        var response = Self.redirect("/sign-in")
        response.headers[.setCookie] = "\(Credentials.sessionCookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        return response
    }

    // MARK: Sessions

    /// Runs `body` for a signed-in browser; others are sent to the sign-in page. Service errors become
    /// an error page with the service's message.
    func signedIn(_ context: CapstanRequestContext, _ body: (Principal) async throws -> Response) async throws
        -> Response
    {
        guard let principal = context.identity else { return Self.redirect("/sign-in") }
        do {
            return try await body(principal)
        } catch let error as ServiceError {
            return page(
                "error", title: "Error", ["heading": Self.heading(error), "message": error.message], actor: principal,
                status: error.status)
        }
    }

    /// A form POST of a signed-in browser. Besides the SameSite=Strict cookie, the Origin header
    /// must name this server, so another site cannot submit forms on a person's behalf.
    func signedInForm(
        _ request: Request, _ context: CapstanRequestContext,
        _ body: (Principal, [String: String]) async throws -> Response
    ) async throws -> Response {
        guard Credentials.isSameOrigin(request) else { return forbiddenCrossSite() }
        let form = try await Self.form(request, context)
        return try await signedIn(context) { principal in try await body(principal, form) }
    }

    private func forbiddenCrossSite() -> Response {
        page(
            "error", title: "Forbidden",
            ["heading": "Forbidden", "message": "This form was sent from another site; it was ignored."], actor: nil,
            status: .forbidden)
    }

    static func form(_ request: Request, _ context: CapstanRequestContext) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 64 << 10)
        var fields: [String: String] = [:]
        for pair in String(buffer: body).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
            }
            guard let key = parts.first else { continue }
            fields[decode(key)] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }

    // MARK: Rendering

    func page(
        _ template: String, title: String, _ values: [String: Any], actor principal: Principal?,
        status: HTTPResponse.Status = .ok, noStore: Bool = false
    ) -> Response {
        let content = library.render(values, withTemplate: template) ?? ""
        var layout: [String: Any] = ["title": title, "content": content]
        if let principal { layout["actor"] = principal.label ?? "\(principal.kind.rawValue) token" }
        let html = library.render(layout, withTemplate: "layout") ?? content
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        // Pages with a secret on them must not linger in caches; the rest are live state anyway.
        headers[.cacheControl] = noStore ? "no-store" : "no-cache"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    private func asset(_ name: String) throws -> Response {
        guard let file = assets.files[name] else {
            throw ServiceError.notFound("no such file: /static/\(name)")
        }
        var headers = Self.securityHeaders
        headers[.contentType] = file.contentType
        headers[.cacheControl] = "no-cache"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: file.body)))
    }

    static var securityHeaders: HTTPFields {
        [
            .contentSecurityPolicy: contentSecurityPolicy, .init("X-Content-Type-Options")!: "nosniff",
            .init("Referrer-Policy")!: "same-origin", .init("X-Frame-Options")!: "DENY",
        ]
    }

    static func redirect(_ location: String) -> Response {
        var headers = securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    static func heading(_ error: ServiceError) -> String {
        switch error.kind {
        case .notFound: "Not found"
        case .forbidden, .unauthorized: "Not allowed"
        case .conflict: "Not possible now"
        default: "Something went wrong"
        }
    }

    // MARK: Views

    static func time(_ date: Date?) -> String {
        guard let date else { return "—" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d UTC", c.year ?? 0, c.month ?? 0, c.day ?? 0, c.hour ?? 0,
            c.minute ?? 0, c.second ?? 0)
    }

    /// A preview in lines for a confirmation page: the switch, the download, the package changes.
    static func previewLines(_ preview: AgentPreview) -> [String] {
        func versions(_ list: [String]) -> String {
            list.map { $0.isEmpty ? "(no version)" : $0 }.joined(separator: ", ")
        }
        var lines = [
            "\(preview.current?.path ?? "(nothing yet)") → \(preview.new)",
            "\(preview.downloadPaths) paths to download, \(size(preview.downloadSize)) "
                + "(\(size(preview.unpackedSize)) unpacked)",
        ]
        lines += preview.changed.map { "changed: \($0.name) \(versions($0.old)) → \(versions($0.new))" }
        lines += preview.added.map { "added: \($0.name) \(versions($0.new))" }
        lines += preview.removed.map { "removed: \($0.name) \(versions($0.old))" }
        lines += preview.missingFromCache.map { "not in the cache: \($0)" }
        return lines
    }

    static func size(_ bytes: Int64?) -> String {
        guard let bytes else { return "—" }
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: "%.1f", value) + " " + units[unit]
    }

    /// Absent values are left out: Mustache would print an optional as "nil" and treat it as present.
    static func present(_ values: [String: Any?]) -> [String: Any] { values.compactMapValues { $0 } }

    private func agentView(_ agent: AgentInfo) -> [String: Any] {
        Self.present([
            "name": agent.name, "online": agent.online, "lastSeen": Self.time(agent.lastSeen),
            "system": agent.system ?? "—", "version": agent.version ?? "—",
            "currentStorePath": agent.currentStorePath?.path ?? "—", "latestID": agent.currentDeployment,
            "latestStatus": agent.currentStatus?.rawValue, "needsReboot": agent.needsReboot == true ? true : nil,
        ])
    }

    private func deploymentView(_ info: DeploymentInfo) -> [String: Any] {
        var duration = "—"
        if let started = info.startedOn {
            let seconds = Int((info.finishedOn ?? Date()).timeIntervalSince(started).rounded())
            duration = seconds < 60 ? "\(seconds) s" : "\(seconds / 60) min \(seconds % 60) s"
            if info.finishedOn == nil { duration += " so far" }
        }
        return Self.present([
            "id": info.id, "agent": info.agent, "index": info.index, "storePath": info.storePath.path,
            "status": info.status.rawValue, "reason": info.reason, "rolledBack": info.rolledBack,
            "created": Self.time(info.createdOn), "started": Self.time(info.startedOn),
            "finished": Self.time(info.finishedOn), "duration": duration, "closureSize": Self.size(info.closureSize),
            "createdBy": info.createdBy,
        ])
    }

    private func cacheView(_ cache: CacheInfo) -> [String: Any] {
        [
            "name": cache.name, "visibility": cache.isPublic ? "public" : "private", "publicKey": cache.publicKey,
            "url": cache.url, "compression": cache.compression, "pathCount": cache.pathCount ?? 0,
            "narSize": Self.size(cache.narSize), "fileSize": Self.size(cache.fileSize),
            "keeps": Self.keeps(cache.retention), "lastGC": cache.retention?.lastGC.map { Self.time($0) } ?? "never",
        ]
    }

    /// A size as the settings form shows it: readable, unless that would round it.
    static func editableSize(_ bytes: Int64) -> String {
        let readable = ByteSize(bytes: bytes).description
        return ByteSize(parsing: readable)?.bytes == bytes ? readable : String(bytes)
    }

    /// A form field, or nil when it was left empty (the setting stays as it is).
    static func filled(_ value: String?) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// What a cache keeps, in a sentence.
    static func keeps(_ retention: CacheRetention?) -> String {
        guard let retention else { return "everything" }
        var parts: [String] = []
        parts.append(retention.retention.map { "paths used in the last \($0)" } ?? "every path")
        if let maxSize = retention.maxSize { parts.append("up to \(size(maxSize)), least recently used out first") }
        return parts.joined(separator: ", ")
            + "; always each agent's current configuration and last \(retention.keepGenerations) successful deployments"
    }
}
