/// The dashboard's stylesheet and its one script, `Resources/static/`, served from `/static/` so
/// that the Content-Security-Policy can forbid inline code. Read once, at start.
struct DashboardAssets: Sendable {
    static let contentTypes: [String: String] = [
        "dashboard.css": "text/css; charset=utf-8",
        "live-log.js": "text/javascript; charset=utf-8",
    ]

    let files: [String: (contentType: String, body: String)]

    static func load() throws -> DashboardAssets {
        var files: [String: (contentType: String, body: String)] = [:]
        for (name, contentType) in contentTypes {
            files[name] = (contentType, try DashboardResources.text("static/\(name)"))
        }
        return DashboardAssets(files: files)
    }
}
