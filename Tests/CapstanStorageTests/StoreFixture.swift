import CapstanModel
import CapstanStorage
import Foundation
import Logging
import NixCore
import TestSupport

/// Opens a fresh, migrated store on the chosen backend and closes it after the test body.
enum StoreFixture {
    static let logger: Logger = {
        var logger = Logger(label: "capstan.storage.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// A database URL and data directory nobody else uses.
    struct Location {
        let url: String?
        let dataDirectory: TemporaryDirectory
    }

    static func makeLocation(_ backend: DatabaseBackend) throws -> Location {
        let directory = try TemporaryDirectory("capstan-storage")
        switch backend {
        case .sqlite: return Location(url: nil, dataDirectory: directory)
        case .postgres: return Location(url: try PostgresServer.shared().createDatabase(), dataDirectory: directory)
        }
    }

    static func open(_ location: Location) async throws -> CapstanStore {
        try await CapstanStore.open(
            databaseURL: location.url, dataDirectory: location.dataDirectory.path, logger: logger)
    }

    static func withStore<R: Sendable>(
        _ backend: DatabaseBackend, migrate: Bool = true, _ body: (CapstanStore) async throws -> R
    ) async throws -> R {
        let location = try makeLocation(backend)
        let store = try await open(location)
        do {
            if migrate { try await store.migrate() }
            let result = try await body(store)
            try await store.shutdown()
            return result
        } catch {
            try? await store.shutdown()
            throw error
        }
    }

    /// Several stores on one fresh, migrated database, standing for server replicas; all are shut down
    /// afterwards, even when the body throws (a pool dropped without shutdown traps).
    static func withReplicas<R: Sendable>(
        _ backend: DatabaseBackend, count: Int = 2, _ body: ([CapstanStore]) async throws -> R
    ) async throws -> R {
        let location = try makeLocation(backend)
        var stores: [CapstanStore] = []
        do {
            for _ in 0..<count { stores.append(try await open(location)) }
            try await stores[0].migrate()
            let result = try await body(stores)
            for store in stores { try await store.shutdown() }
            withExtendedLifetime(location) {}
            return result
        } catch {
            for store in stores { try? await store.shutdown() }
            withExtendedLifetime(location) {}
            throw error
        }
    }
}

/// Values shaped like the real ones.
enum Sample {
    static let nix32Alphabet = Array("0123456789abcdfghijklmnpqrsvwxyz")

    static func hashPart() -> String {
        String((0..<32).map { _ in nix32Alphabet.randomElement()! })
    }

    static func workspace(_ store: CapstanStore, name: String = "ws-\(UUID().uuidString.prefix(8).lowercased())")
        async throws -> WorkspaceRecord
    {
        try await store.createWorkspace(name: name)
    }

    static func cache(workspaceID: String, name: String = "cache-\(UUID().uuidString.prefix(8).lowercased())")
        -> CacheRecord
    {
        CacheRecord(
            id: UUID().uuidString.lowercased(), workspaceID: workspaceID, name: name, isPublic: true,
            keyName: "\(name)-1", secretKey: "\(name)-1:c2VjcmV0", publicKey: "\(name)-1:cHVibGlj",
            compression: "zstd", priority: 41, createdAt: Date().roundedToStoredPrecision)
    }

    static func path(
        cacheID: String, hashPart: String = Sample.hashPart(), name: String = "hello-2.12", references: [String] = [],
        narSize: Int64 = 1234, fileSize: Int64 = 567
    ) -> PathRecord {
        let fileHash = "sha256:" + Sample.hashPart() + "0000000000000000000"
        return PathRecord(
            cacheID: cacheID, hashPart: hashPart, storePath: .known("/nix/store/\(hashPart)-\(name)"),
            narHash: "sha256:" + Sample.hashPart() + "1111111111111111111", narSize: narSize,
            fileName: "\(fileHash.dropFirst(7)).nar.zst", fileHash: fileHash, fileSize: fileSize,
            compression: "zstd", references: references, deriver: "\(Sample.hashPart())-\(name).drv",
            sigs: ["cache-1:c2ln", "other-1:b3RoZXI="], ca: nil, createdAt: Date().roundedToStoredPrecision)
    }
}
