import Foundation
import TestSupport
import Testing

/// Garbage collection with real agents and real Nix: what agents run and can roll back to stays
/// substitutable, what was never deployed goes.
@Suite(.serialized) struct CacheGarbageCollectionTests {
    @Test func retentionZeroRemovesOnlyTheUndeployedClosure() throws {
        let temp = try TemporaryDirectory("capstan-gc")
        // Unused blobs go two seconds after their paths, so the test sees them deleted.
        let server = try ServerProcess(
            dataDirectory: temp.sub("data"), environment: ["CAPSTAN_GC_BLOB_GRACE": "2s"])
        let fixture = try DeployFixture(server: server, temp: temp)
        let machine = try fixture.addAgent("gc1")
        let marker = fixture.marker("gc1")
        let previous = try fixture.configuration("gc-previous", marker: marker)
        let current = try fixture.configuration("gc-current", marker: marker)
        let undeployed = try fixture.configuration("gc-undeployed", marker: marker)
        for path in [previous, current] {
            let result = try fixture.activate(try fixture.deployJSON(["gc1": path]))
            #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)\n\(machine.log)")
        }
        #expect(machine.currentProfileTarget == current)
        let closures = try [previous, current, undeployed].map { try NixFixtures.closure(of: $0) }
        #expect(closures.allSatisfy { $0.count == 2 })

        let configured = try fixture.admin.run(["cache", "configure", "fleet", "--retention", "0s", "--json"])
        let settings = try JSONSerialization.jsonObject(with: configured.stdout) as? [String: Any]
        #expect((settings?["retention"] as? [String: Any])?["retention"] as? String == "0s")
        let dryRun = try fixture.admin.run(["cache", "gc", "fleet", "--dry-run", "--json"])
        let planned = try Self.removed(dryRun.stdout)
        #expect(Set(planned) == Set(closures[2]))
        let info = try fixture.admin.run(["cache", "info", "fleet"]).stdoutString
        #expect(info.contains("next GC:     would remove 2 paths"), "\(info)")

        let gc = try fixture.admin.run(["cache", "gc", "fleet", "--json"])
        let removed = try Self.removed(gc.stdout)
        #expect(Set(removed) == Set(closures[2]))
        #expect(removed.first == undeployed, "the referrer goes before what it refers to")
        let report = try JSONSerialization.jsonObject(with: gc.stdout) as? [String: Any]
        #expect(report?["pinnedPaths"] as? Int == 4)
        let text = try fixture.admin.run(["cache", "gc", "fleet"]).stdoutString
        #expect(text.contains("fleet: removed 0 paths"), "\(text)")

        // Nix on machines with empty stores: the deployed and the rollback closures substitute, the other is gone.
        let substituter = "\(server.url)/cache/fleet"
        for path in [current, previous] {
            let result = try NixFixtures.substituteIntoEmptyStore(
                [path], substituter: substituter, key: fixture.cacheKey, in: temp)
            #expect(result.status == 0, "\(path): \(result.stderrString)")
        }
        let gone = try NixFixtures.substituteIntoEmptyStore(
            [undeployed], substituter: substituter, key: fixture.cacheKey, in: temp)
        #expect(gone.status != 0)
        let hash = String(undeployed.dropFirst("/nix/store/".count).prefix(32))
        #expect(try HTTP.request("GET", "\(substituter)/\(hash).narinfo").status == 404)

        // After the grace period the removed closure's blobs go too.
        Thread.sleep(forTimeInterval: 2.5)
        let blobs = try fixture.admin.run(["cache", "gc", "fleet", "--json"])
        let blobReport = try JSONSerialization.jsonObject(with: blobs.stdout) as? [String: Any]
        #expect(blobReport?["blobsDeleted"] as? Int == 2, "\(blobs.stdoutString)")
        let verify = try fixture.admin.run(["cache", "verify", "fleet", "--json"], check: false)
        #expect(verify.status == 0, "\(verify.stdoutString)\(verify.stderrString)")

        // The agent rolls back to its previous configuration, and a new machine deploys it from the cache.
        let deployer = fixture.admin.with(token: fixture.activateToken)
        let rollback = try deployer.run(["deploy", "rollback", "gc1", "--json"]).stdout
        let rollbackObject = try JSONSerialization.jsonObject(with: rollback) as? [String: Any]
        #expect(rollbackObject?["storePath"] as? String == previous)
        let rollbackID = try #require(rollbackObject?["id"] as? String)
        #expect(try eventually { try fixture.deployment(rollbackID)["status"] as? String == "Succeeded" })
        #expect(machine.currentProfileTarget == previous)
        let fresh = try fixture.addAgent("gc2")
        let result = try fixture.activate(try fixture.deployJSON(["gc2": current]))
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)\n\(fresh.log)")
        #expect(fresh.currentProfileTarget == current)
    }

    @Test func removingADeployedPathIsRefusedNamingTheAgent() throws {
        let fixture = try DeployFixture()
        let machine = try fixture.addAgent("pinned")
        let deployed = try fixture.configuration("rm-deployed", marker: fixture.marker("pinned"))
        let result = try fixture.activate(try fixture.deployJSON(["pinned": deployed]))
        #expect(result.status == 0, "\(result.stdoutString)\(result.stderrString)\n\(machine.log)")
        let data = try #require(try NixFixtures.closure(of: deployed).last)
        let refused = try fixture.admin.run(["cache", "rm", "fleet", data], check: false)
        #expect(refused.status != 0)
        #expect(refused.stderrString.contains("agent 'pinned'"), "\(refused.stderrString)")
        #expect(refused.stderrString.contains("current configuration"))
        let forced = try fixture.admin.run(["cache", "rm", "fleet", data, "--force", "--json"])
        #expect(Set(try Self.removed(forced.stdout)) == [deployed, data])
    }

    static func removed(_ json: Data) throws -> [String] {
        let object = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        return (object?["removed"] as? [[String: Any]] ?? []).compactMap { $0["storePath"] as? String }
    }
}
