import CapstanServices
import Foundation
import Mustache

/// The dashboard's Mustache templates, `Resources/templates/*.mustache`. Every value from users,
/// agents or logs goes through `{{ }}`, which escapes HTML; `{{{ }}}` appears once, for the page
/// body the dashboard rendered itself.
enum DashboardTemplates {
    static let names = [
        "layout", "sign-in", "agents", "agent-new", "agent-created", "deployments", "deployment", "confirm", "caches",
        "cache-settings", "onboarding", "activate-token", "error", "audit", "rollout",
    ]

    static func makeLibrary() throws -> MustacheLibrary {
        var templates: [String: MustacheTemplate] = [:]
        for name in names {
            templates[name] = try MustacheTemplate(string: try DashboardResources.text("templates/\(name).mustache"))
        }
        return MustacheLibrary(templates: templates)
    }
}

/// The files the dashboard ships beside the binary (SwiftPM's resource bundle of this target).
enum DashboardResources {
    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String {
            "dashboard resource \(path) is missing: install the capstan_CapstanServer.resources directory beside the capstan binary"
        }
    }

    static func text(_ relativePath: String) throws -> String {
        guard
            let url = Bundle.module.url(forResource: "Resources", withExtension: nil)?.appendingPathComponent(
                relativePath),
            let data = FileManager.default.contents(atPath: url.path)
        else { throw Missing(path: relativePath) }
        return String(decoding: data, as: UTF8.self)
    }
}
