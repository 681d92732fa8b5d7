import Foundation
import NixCore

/// What activating a deploy.json would change on each agent, before anything is created.
public struct DeployPreview: Codable, Sendable, Equatable {
    public var agents: [AgentPreview]
    public init(agents: [AgentPreview]) { self.agents = agents }
}

/// One agent's side of a preview: its configuration now and next, what it must download from
/// its cache, and the packages that change, like `nvd diff`.
public struct AgentPreview: Codable, Sendable, Equatable {
    public var agent: String
    /// What the agent runs now, as it last reported; nil before its first deployment.
    public var current: StorePath?
    public var new: StorePath
    /// Whether the cache knows the current configuration's closure (else every path counts as new).
    public var currentClosureKnown: Bool
    /// Paths of the new closure the machine does not have (not in its current closure).
    public var downloadPaths: Int
    /// Their compressed size in the cache (narinfo FileSize), what the agent downloads.
    public var downloadSize: Int64
    /// Their NAR size, what they take once unpacked.
    public var unpackedSize: Int64
    /// The new configuration's closure, with its NAR size.
    public var closurePaths: Int
    public var closureSize: Int64
    /// Paths of the new closure the cache does not hold: the agent cannot substitute them.
    public var missingFromCache: [StorePath]
    public var changed: [PackageChange]
    public var added: [PackageChange]
    public var removed: [PackageChange]

    public init(
        agent: String, current: StorePath?, new: StorePath, currentClosureKnown: Bool, downloadPaths: Int,
        downloadSize: Int64, unpackedSize: Int64, closurePaths: Int, closureSize: Int64, missingFromCache: [StorePath],
        changed: [PackageChange], added: [PackageChange], removed: [PackageChange]
    ) {
        self.agent = agent
        self.current = current
        self.new = new
        self.currentClosureKnown = currentClosureKnown
        self.downloadPaths = downloadPaths
        self.downloadSize = downloadSize
        self.unpackedSize = unpackedSize
        self.closurePaths = closurePaths
        self.closureSize = closureSize
        self.missingFromCache = missingFromCache
        self.changed = changed
        self.added = added
        self.removed = removed
    }
}

/// A package by name with its versions before and after (empty on the side it is absent from).
public struct PackageChange: Codable, Sendable, Equatable {
    public var name: String
    public var old: [String]
    public var new: [String]
    public init(name: String, old: [String], new: [String]) {
        self.name = name
        self.old = old
        self.new = new
    }

    /// Packages of two closures (store path names) compared by name: versions changed, added, removed.
    public static func compare(old: [String], new: [String]) -> (
        changed: [PackageChange], added: [PackageChange], removed: [PackageChange]
    ) {
        func versions(_ names: [String]) -> [String: Set<String>] {
            var result: [String: Set<String>] = [:]
            for name in names {
                let (package, version) = Self.split(name)
                result[package, default: []].insert(version)
            }
            return result
        }
        let before = versions(old)
        let after = versions(new)
        var changed: [PackageChange] = []
        var added: [PackageChange] = []
        var removed: [PackageChange] = []
        for name in Set(before.keys).union(after.keys).sorted() {
            let was = before[name]?.sorted() ?? []
            let now = after[name]?.sorted() ?? []
            if was.isEmpty {
                added.append(PackageChange(name: name, old: [], new: now))
            } else if now.isEmpty {
                removed.append(PackageChange(name: name, old: was, new: []))
            } else if was != now {
                changed.append(PackageChange(name: name, old: was, new: now))
            }
        }
        return (changed, added, removed)
    }

    /// `builtins.parseDrvName`'s split: the version starts after the first `-` not followed by a letter.
    static func split(_ name: String) -> (String, String) {
        var index = name.startIndex
        while let dash = name[index...].firstIndex(of: "-") {
            let next = name.index(after: dash)
            if next == name.endIndex || !name[next].isLetter {
                return (String(name[..<dash]), String(name[next...]))
            }
            index = next
        }
        return (name, "")
    }
}
