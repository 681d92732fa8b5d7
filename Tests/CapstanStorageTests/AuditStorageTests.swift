import CapstanModel
import CapstanStorage
import Foundation
import TestSupport
import Testing

@Suite("Audit events on SQLite and PostgreSQL")
struct AuditStorageTests {
    @Test(arguments: DatabaseBackend.allCases)
    func eventsAreListedNewestFirstPerWorkspace(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let alpha = try await store.createWorkspace(name: "alpha")
            let beta = try await store.createWorkspace(name: "beta")
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            for (offset, action) in ["token.create", "deployment.activate", "deployment.cancel"].enumerated() {
                try await store.insertAuditEvent(
                    AuditEventRecord(
                        workspaceID: alpha.id, time: start.addingTimeInterval(Double(offset)), actor: "ci <main>",
                        actorTokenID: "t1", action: action, target: "target-\(offset)", detail: nil))
            }
            try await store.insertAuditEvent(
                AuditEventRecord(
                    workspaceID: beta.id, time: start, actor: nil, actorTokenID: nil, action: "cache.create",
                    target: "other", detail: "public"))
            let events = try await store.auditEvents(workspaceID: alpha.id)
            #expect(events.map(\.action) == ["deployment.cancel", "deployment.activate", "token.create"])
            #expect(events.first?.actor == "ci <main>")
            #expect(events.first?.time == start.addingTimeInterval(2))
            #expect(try await store.auditEvents(workspaceID: alpha.id, limit: 1).count == 1)
            let other = try await store.auditEvents(workspaceID: beta.id)
            #expect(other.map(\.target) == ["other"])
            #expect(other.first?.actor == nil && other.first?.detail == "public")
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func manyEventsAreRecordedTogether(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let workspace = try await store.createWorkspace(name: "alpha")
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            // More than one statement's worth (500 rows per statement).
            let events = (0..<1_203).map { i in
                AuditEventRecord(
                    workspaceID: workspace.id, time: start.addingTimeInterval(Double(i)), actor: "ci",
                    actorTokenID: "t1", action: "deployment.activate", target: "deployment-\(i)", detail: "node-\(i) #1"
                )
            }
            try await store.insertAuditEvents(events)
            try await store.insertAuditEvents([])
            let listed = try await store.auditEvents(workspaceID: workspace.id, limit: 2_000)
            #expect(listed.count == 1_203)
            #expect(listed.first?.target == "deployment-1202" && listed.first?.detail == "node-1202 #1")
            #expect(listed.last?.target == "deployment-0")
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func eventsOfATargetAreCountedAndFoundByDetailPrefix(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let alpha = try await store.createWorkspace(name: "alpha")
            let beta = try await store.createWorkspace(name: "beta")
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            let events = (0..<5).map { i in
                AuditEventRecord(
                    workspaceID: alpha.id, time: start.addingTimeInterval(Double(i * 60)), actor: nil,
                    actorTokenID: nil, action: "agent.local", target: "web1", detail: "local-\(i): rollback")
            }
            try await store.insertAuditEvents(
                events + [
                    AuditEventRecord(
                        workspaceID: beta.id, time: start, actor: nil, actorTokenID: nil, action: "agent.local",
                        target: "web1", detail: "local-9: rollback")
                ])
            func count(_ workspace: String, _ target: String, since seconds: Double) async throws -> Int {
                try await store.auditEventCount(
                    workspaceID: workspace, action: "agent.local", target: target,
                    since: start.addingTimeInterval(seconds))
            }
            #expect(try await count(alpha.id, "web1", since: 0) == 5)
            #expect(try await count(alpha.id, "web1", since: 120) == 3)
            #expect(try await count(alpha.id, "web2", since: 0) == 0)
            #expect(try await count(beta.id, "web1", since: 0) == 1)
            func has(_ workspace: String, _ prefix: String) async throws -> Bool {
                try await store.hasAuditEvent(
                    workspaceID: workspace, action: "agent.local", target: "web1", detailPrefix: prefix)
            }
            #expect(try await has(alpha.id, "local-3: "))
            #expect(try await !has(alpha.id, "local-9: "), "another workspace's event")
            #expect(try await !has(alpha.id, "local-3x"))
            #expect(try await has(beta.id, "local-9: "))
        }
    }
}

@Suite("Webhooks and dashboard sessions on SQLite and PostgreSQL")
struct WebhookStorageTests {
    @Test(arguments: DatabaseBackend.allCases)
    func webhooksKeepTheirDeliveriesUntilRemoved(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let alpha = try await store.createWorkspace(name: "alpha")
            let beta = try await store.createWorkspace(name: "beta")
            let hook = WebhookRecord(
                id: "h1", workspaceID: alpha.id, url: "http://127.0.0.1:9/hook", secret: "s", createdAt: Date(),
                createdBy: "admin")
            try await store.insertWebhook(hook)
            #expect(try await store.webhooks(workspaceID: alpha.id).map(\.id) == ["h1"])
            #expect(try await store.webhooks(workspaceID: beta.id).isEmpty)
            let start = Date(timeIntervalSince1970: 1_700_000_000)
            for attempt in 1...2 {
                try await store.insertWebhookDelivery(
                    WebhookDeliveryRecord(
                        webhookID: "h1", deploymentID: "d1", event: "deployment.finished", attempt: attempt,
                        time: start.addingTimeInterval(Double(attempt)), statusCode: attempt == 1 ? 500 : 200,
                        error: attempt == 1 ? "HTTP 500" : nil, delivered: attempt == 2))
            }
            let deliveries = try await store.webhookDeliveries(workspaceID: alpha.id)
            #expect(deliveries.map(\.attempt) == [2, 1])
            #expect(deliveries.map(\.delivered) == [true, false])
            #expect(try await store.webhookDeliveries(workspaceID: beta.id).isEmpty)
            #expect(try await store.deleteWebhook(id: "h1", workspaceID: beta.id) == false)
            #expect(try await store.deleteWebhook(id: "h1", workspaceID: alpha.id))
            #expect(try await store.webhookDeliveries(workspaceID: alpha.id).isEmpty)
        }
    }

    @Test(arguments: DatabaseBackend.allCases)
    func dashboardSessionsAreFoundByTheirHashAndEnd(backend: DatabaseBackend) async throws {
        try await StoreFixture.withStore(backend) { store in
            let alpha = try await store.createWorkspace(name: "alpha")
            let token = TokenRecord(id: "t1", workspaceID: alpha.id, kind: .admin, createdAt: Date())
            try await store.insertToken(token, secretHash: "token-hash")
            let now = Date(timeIntervalSince1970: 1_700_000_000)
            let session = DashboardSessionRecord(tokenID: "t1", createdAt: now, expiresAt: now.addingTimeInterval(3600))
            try await store.insertDashboardSession(secretHash: "session-hash", session)
            #expect(try await store.dashboardSession(secretHash: "session-hash") == session)
            #expect(try await store.token(id: "t1")?.kind == .admin)
            try await store.deleteDashboardSession(secretHash: "session-hash")
            #expect(try await store.dashboardSession(secretHash: "session-hash") == nil)
        }
    }
}
