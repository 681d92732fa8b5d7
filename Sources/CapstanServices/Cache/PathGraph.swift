import CapstanStorage

/// The reference graph of one cache's paths, by index, for garbage collection and `cache rm`.
/// References to paths the cache does not hold, and self-references, are left out.
struct PathGraph: Sendable {
    let paths: [PathUsage]
    let index: [String: Int]
    /// For each path, the paths it refers to.
    let references: [[Int32]]
    /// For each path, the paths that refer to it.
    let referrers: [[Int32]]
    /// Every path once, each before the paths it refers to (referrers first).
    let order: [Int32]
    /// Each path's position in `order`.
    let position: [Int32]
    /// Paths on a reference cycle (which Nix does not make): never removed, nor what they refer to.
    let cyclic: [Int32]

    init(paths: [PathUsage], edges: [(referrer: String, reference: String)]) {
        self.paths = paths
        var index: [String: Int] = [:]
        index.reserveCapacity(paths.count)
        for (i, path) in paths.enumerated() { index[path.hashPart] = i }
        var references = [[Int32]](repeating: [], count: paths.count)
        var referrers = [[Int32]](repeating: [], count: paths.count)
        for edge in edges {
            guard let from = index[edge.referrer], let to = index[edge.reference], from != to else { continue }
            references[from].append(Int32(to))
            referrers[to].append(Int32(from))
        }
        // Kahn's algorithm from the paths nothing refers to.
        var waiting = referrers.map(\.count)
        var order: [Int32] = []
        order.reserveCapacity(paths.count)
        for i in paths.indices where waiting[i] == 0 { order.append(Int32(i)) }
        var next = 0
        while next < order.count {
            for reference in references[Int(order[next])] {
                waiting[Int(reference)] -= 1
                if waiting[Int(reference)] == 0 { order.append(reference) }
            }
            next += 1
        }
        var cyclic: [Int32] = []
        if order.count < paths.count {
            for i in paths.indices where waiting[i] > 0 {
                cyclic.append(Int32(i))
                order.append(Int32(i))
            }
        }
        var position = [Int32](repeating: 0, count: paths.count)
        for (offset, i) in order.enumerated() { position[Int(i)] = Int32(offset) }
        self.index = index
        self.references = references
        self.referrers = referrers
        self.order = order
        self.position = position
        self.cyclic = cyclic
    }

    /// The paths reachable from `roots` through references, roots included.
    func closure(of roots: some Sequence<Int>) -> [Bool] {
        reach(from: roots, through: references)
    }

    /// The paths that reach `targets` through references (their referrers, transitively), targets included.
    func referrerClosure(of targets: some Sequence<Int>) -> [Bool] {
        reach(from: targets, through: referrers)
    }

    private func reach(from start: some Sequence<Int>, through edges: [[Int32]]) -> [Bool] {
        var seen = [Bool](repeating: false, count: paths.count)
        var stack: [Int32] = []
        for i in start where !seen[i] {
            seen[i] = true
            stack.append(Int32(i))
        }
        while let i = stack.popLast() {
            for j in edges[Int(i)] where !seen[Int(j)] {
                seen[Int(j)] = true
                stack.append(j)
            }
        }
        return seen
    }

    /// The hash part of a store path, its base name, or a hash part itself.
    static func hashPart(of storePath: String) -> String? {
        let base = storePath.split(separator: "/").last.map(String.init) ?? storePath
        let hash = base.split(separator: "-", maxSplits: 1).first.map(String.init) ?? base
        return hash.utf8.count == 32 ? hash : nil
    }
}

/// What garbage collection removes from one cache: paths neither pinned by agents nor (through
/// the references of) a path used within the retention period, then, while the cache is larger
/// than its bound, the least recently used of the rest. Removal never breaks a closure that stays:
/// a path goes only with every path that refers to it.
struct GarbageCollectionPlan {
    let graph: PathGraph
    /// Removed paths, referrers before the paths they refer to, each with why.
    let removals: [(index: Int, reason: String)]
    /// Paths in the closure of what agents need (or of a reference cycle).
    let pinnedCount: Int

    /// - Parameters:
    ///   - pinned: hash parts of the configurations agents need; their closures stay.
    ///   - retentionCutoff: paths last used (themselves or through a referrer) before this
    ///     (milliseconds since 1970) expire; nil: none does.
    ///   - maxSize: the most the remaining paths' files may take, in bytes; nil: no bound.
    init(graph: PathGraph, pinned: Set<String>, retentionCutoff: Int64?, maxSize: Int64?) {
        self.graph = graph
        let count = graph.paths.count
        let roots = pinned.compactMap { graph.index[$0] } + graph.cyclic.map(Int.init)
        let isPinned = graph.closure(of: roots)
        pinnedCount = isPinned.reduce(0) { $0 + ($1 ? 1 : 0) }
        // A path is as recently used as the most recently used path that needs it.
        var effective = graph.paths.map(\.lastAccessed)
        for i in graph.order {
            for reference in graph.references[Int(i)] where effective[Int(reference)] < effective[Int(i)] {
                effective[Int(reference)] = effective[Int(i)]
            }
        }
        var removed = [String?](repeating: nil, count: count)
        if let retentionCutoff {
            for i in 0..<count where !isPinned[i] && effective[i] < retentionCutoff { removed[i] = "expired" }
        }
        if let maxSize {
            var total = graph.paths.indices.reduce(Int64(0)) {
                $0 + (removed[$1] == nil ? graph.paths[$1].fileSize : 0)
            }
            if total > maxSize {
                // Referrers are never more recently used than what they refer to, and come first in
                // `order`: every prefix of this order is closed under referrers.
                let candidates = (0..<count).filter { !isPinned[$0] && removed[$0] == nil }.sorted {
                    (effective[$0], graph.position[$0]) < (effective[$1], graph.position[$1])
                }
                for i in candidates {
                    guard total > maxSize else { break }
                    removed[i] = "over max size"
                    total -= graph.paths[i].fileSize
                }
            }
        }
        removals = graph.order.compactMap { i in removed[Int(i)].map { (Int(i), $0) } }
    }
}
