import CapstanModel
import CapstanStorage
import Foundation
import Testing

@testable import CapstanServices

/// Garbage collection plans, then removes; what agents need is read again inside each removal's
/// transaction, so a deployment activated in between keeps its closure.
@Suite("Garbage collection pins")
struct GarbageCollectionPinTests {
    @Test(arguments: DatabaseBackend.allCases)
    func aDeploymentActivatedBetweenPlanAndRemovalKeepsItsClosure(backend: DatabaseBackend) async throws {
        try await Services.with(backend) { services in
            let lib = CacheLifecycleTests.ToyPath("lib")
            let system = CacheLifecycleTests.ToyPath("system", refs: [lib])
            let other = CacheLifecycleTests.ToyPath("other")
            try await CacheLifecycleTests.push(services, [lib, system, other])
            let web1 = try await services.addAgent("web1")
            let cache = try await CacheLifecycleTests.configure(services, ConfigureCacheRequest(retention: "0s"))
            let now = Date().addingTimeInterval(1)
            let planned = try await services.caches.plan(cache, now: now)
            #expect(planned.plan.removals.count == 3, "nothing is pinned yet: every path has expired")
            // Between the plan and the removal, a deployment of `system` is activated (and stays pending).
            _ = try await services.deploy.activate(
                DeploySpec(agents: [web1.name: system.storePath]), by: try await services.principal(.activate))
            let report = try await services.caches.collectGarbage(in: cache, as: planned, dryRun: false, now: now)
            #expect(report.removed.map(\.storePath) == [other.storePath])
            #expect(try await CacheLifecycleTests.hashParts(services) == [lib.hashPart, system.hashPart])
        }
    }
}
