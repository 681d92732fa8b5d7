import CapstanModel
import CapstanStorage
import Foundation
import NixCore

/// Previews: what activating a deploy.json would change on each agent, from the references and
/// sizes its cache recorded, before anything is created.
extension DeployService {
    public func preview(_ spec: DeploySpec, agentFilter: Set<String>? = nil, by principal: Principal) async throws
        -> DeployPreview
    {
        try AccessPolicy.require(.readDeployments, by: principal)
        do {
            try spec.validate()
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        let wanted = spec.agents.sorted(by: { $0.key < $1.key }).filter { agentFilter?.contains($0.key) ?? true }
        guard !wanted.isEmpty else {
            throw ServiceError.badRequest("no agent of deploy.json matches the --agent filter")
        }
        let agents = try await store.agents(workspaceID: principal.workspaceID, names: wanted.map(\.key))
        var previews: [AgentPreview] = []
        // Fleets share configurations: each closure is walked once per request, not once per agent.
        var closures = PreviewMemo()
        for (name, path) in wanted {
            guard let agent = agents[name] else {
                throw ServiceError.badRequest(
                    "deploy.json: agents.\(name): no agent named '\(name)' in this workspace; "
                        + "add it with `capstan agent create \(name)`")
            }
            previews.append(try await preview(agent, to: path, closures: &closures))
        }
        return DeployPreview(agents: previews)
    }

    /// What retrying a deployment would change on its agent.
    public func previewRetry(id: String, by principal: Principal) async throws -> AgentPreview {
        try AccessPolicy.require(.readDeployments, by: principal)
        let record = try await record(id: id, workspaceID: principal.workspaceID)
        guard let agent = try await store.agent(id: record.agentID) else {
            throw ServiceError.notFound("the agent of deployment \(id) no longer exists")
        }
        return try await preview(agent, to: record.storePath)
    }

    /// What rolling an agent back would change on it.
    public func previewRollback(agentName: String, by principal: Principal) async throws -> AgentPreview {
        try AccessPolicy.require(.readDeployments, by: principal)
        let (agent, target) = try await rollbackTarget(agentName: agentName, workspaceID: principal.workspaceID)
        return try await preview(agent, to: target.storePath)
    }

    private func preview(_ agent: AgentRecord, to path: StorePath) async throws -> AgentPreview {
        var closures = PreviewMemo()
        return try await preview(agent, to: path, closures: &closures)
    }

    private func preview(_ agent: AgentRecord, to path: StorePath, closures: inout PreviewMemo) async throws
        -> AgentPreview
    {
        let cacheID = try await cacheRecord(for: agent)?.id
        let new = try await closure(of: path, cacheID: cacheID, closures: &closures)
        var old = Closure()
        if let current = agent.currentStorePath {
            old = try await closure(of: current, cacheID: cacheID, closures: &closures)
        }
        let present = Set(old.paths.keys)
        let download = new.paths.values.filter { !present.contains($0.storePath) }
        let packages = PackageChange.compare(
            old: old.paths.values.map(\.storePath.name) + old.missing.map(\.name),
            new: new.paths.values.map(\.storePath.name) + new.missing.map(\.name))
        return AgentPreview(
            agent: agent.name, current: agent.currentStorePath, new: path,
            currentClosureKnown: agent.currentStorePath != nil && old.missing.isEmpty,
            downloadPaths: download.count, downloadSize: download.reduce(0) { $0 + $1.fileSize },
            unpackedSize: download.reduce(0) { $0 + $1.narSize }, closurePaths: new.paths.count + new.missing.count,
            closureSize: new.paths.values.reduce(0) { $0 + $1.narSize }, missingFromCache: new.missing.sorted(),
            changed: packages.changed, added: packages.added, removed: packages.removed)
    }

    /// The closure of a store path as the cache recorded it: the paths it holds, and those it lacks.
    struct Closure {
        var paths: [StorePath: PathRecord] = [:]
        var missing: [StorePath] = []
    }

    struct ClosureKey: Hashable {
        var root: String
        var cacheID: String?
    }

    private func closure(of root: StorePath, cacheID: String?, closures: inout PreviewMemo) async throws
        -> Closure
    {
        let key = ClosureKey(root: root.path, cacheID: cacheID)
        if let known = closures.closures[key] { return known }
        let walked = try await closure(of: root, cacheID: cacheID, records: &closures.records)
        // A few configurations are remembered, not every agent's: memory stays that of a few closures.
        if closures.closures.count >= 16 { closures.closures.removeAll() }
        closures.closures[key] = walked
        return walked
    }

    /// What one preview request has read: whole closures, and each path of a cache (or its absence)
    /// once, as different configurations share most of their closures.
    struct PreviewMemo {
        var closures: [ClosureKey: Closure] = [:]
        var records: [ClosureKey: PathRecord?] = [:]
    }

    private func closure(of root: StorePath, cacheID: String?, records: inout [ClosureKey: PathRecord?]) async throws
        -> Closure
    {
        var closure = Closure()
        guard let cacheID else {
            closure.missing = [root]
            return closure
        }
        var seen: Set<StorePath> = [root]
        var frontier = [root]
        while !frontier.isEmpty {
            let hashParts = Dictionary(frontier.map { ($0.hashPart, $0) }, uniquingKeysWith: { first, _ in first })
            var unread = hashParts.keys.filter { records[ClosureKey(root: $0, cacheID: cacheID)] == nil }
            // Bounded memory: past a million paths read, what was read is forgotten.
            if records.count + unread.count > 1_000_000 {
                records.removeAll()
                unread = Array(hashParts.keys)
            }
            for hashPart in unread { records[ClosureKey(root: hashPart, cacheID: cacheID)] = .some(nil) }
            if !unread.isEmpty {
                for record in try await store.paths(cacheID: cacheID, hashParts: unread) {
                    records[ClosureKey(root: record.hashPart, cacheID: cacheID)] = record
                }
            }
            let found = hashParts.keys.compactMap { records[ClosureKey(root: $0, cacheID: cacheID)] ?? nil }
            let foundHashes = Set(found.map(\.hashPart))
            closure.missing += hashParts.filter { !foundHashes.contains($0.key) }.map(\.value)
            var next: [StorePath] = []
            for record in found {
                closure.paths[record.storePath] = record
                // References were checked as the path was stored.
                for reference in record.references {
                    guard let path = try? StorePath(baseName: reference) else { continue }
                    if seen.insert(path).inserted { next.append(path) }
                }
            }
            frontier = next
        }
        return closure
    }
}
