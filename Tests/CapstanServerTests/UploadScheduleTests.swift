import NixCore
import Testing

@testable import CapstanClient

/// The order of a push: the head of the longest chain first, a path as soon as its references have
/// started (or, for a server that does not wait, been stored), and back to waiting when refused.
struct UploadScheduleTests {
    static func path(_ name: String, size: UInt64, references: [LocalPathInfo] = []) -> LocalPathInfo {
        let hash = Nix32.encode(Array(NixHasher.hash(.sha256, Array(name.utf8)).bytes.prefix(20)))
        let path = "/nix/store/\(hash)-\(name)"
        return LocalPathInfo(
            path: StorePath.known(path), narHash: "sha256:0", narSize: size,
            references: references.map(\.path.path) + [path])
    }

    /// lib ← mid ← app, 10 bytes each, and a lone path of 25 bytes: larger than any one of the chain.
    static func paths() -> [LocalPathInfo] {
        let lib = path("lib", size: 10)
        let mid = path("mid", size: 10, references: [lib])
        let app = path("app", size: 10, references: [mid, lib])
        return [app, path("lone", size: 25), mid, lib]
    }

    static func name(_ schedule: UploadSchedule, _ position: Int?) -> String? {
        position.map { String(schedule.infos[$0].path.path.split(separator: "-").last ?? "") }
    }

    @Test func theLongestChainGoesFirstAndDependentsFollowOnceTheirReferencesStarted() {
        var schedule = UploadSchedule(Self.paths(), overlapping: true)
        #expect(Self.name(schedule, schedule.startNext()) == "lib")
        #expect(Self.name(schedule, schedule.startNext()) == "lone")
        #expect(Self.name(schedule, schedule.startNext()) == "mid")
        let app = schedule.startNext()
        #expect(Self.name(schedule, app) == "app")
        #expect(schedule.startNext() == nil)
        // Refused for want of its references, it waits until they are stored.
        schedule.awaitStoredReferences(app!)
        #expect(!schedule.hasReady)
        for position in schedule.infos.indices where position != app { schedule.stored(position) }
        #expect(schedule.nextReady == app)
        schedule.stored(app!)
        #expect(schedule.isComplete)
    }

    @Test func withoutOverlapADependentWaitsUntilItsReferencesAreStored() {
        var schedule = UploadSchedule(Self.paths(), overlapping: false)
        let lib = schedule.startNext()
        #expect(Self.name(schedule, lib) == "lib")
        #expect(Self.name(schedule, schedule.startNext()) == "lone")
        #expect(schedule.startNext() == nil)
        #expect(
            schedule.unstoredDependents(of: lib!).map { $0.split(separator: "-").last! }.sorted() == ["app", "mid"])
        schedule.stored(lib!)
        #expect(Self.name(schedule, schedule.startNext()) == "mid")
    }
}
