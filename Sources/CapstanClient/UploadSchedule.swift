/// The order in which a push sends the paths the cache lacks. A path is ready once every missing
/// path it references has started (when the server waits for references) or has been stored (when
/// it does not, and for a path the server refused for want of them). Among ready paths, the one
/// heading the longest chain of dependents (in NAR bytes) goes first: the end of the push waits
/// for that chain.
struct UploadSchedule {
    enum Progress {
        case waiting
        case ready
        case started
        case stored
    }

    let infos: [LocalPathInfo]
    private var references: [[Int]] = []
    private var dependents: [[Int]] = []
    /// NAR bytes of the path and of its heaviest chain of dependents.
    private(set) var chainBytes: [UInt64] = []
    private(set) var progress: [Progress] = []
    /// Needs its references stored, not merely started, before it goes.
    private var needsStoredReferences: [Bool] = []
    /// Ready paths, the most urgent last.
    private var ready: [Int] = []
    private var storedCount = 0

    init(_ missing: [LocalPathInfo], overlapping: Bool) {
        infos = missing
        var index: [String: Int] = [:]
        for (position, info) in missing.enumerated() { index[info.path.path] = position }
        references = missing.enumerated().map { position, info in
            Array(Set(info.references.compactMap { index[$0] }.filter { $0 != position }))
        }
        dependents = Array(repeating: [], count: missing.count)
        for (position, refs) in references.enumerated() {
            for reference in refs { dependents[reference].append(position) }
        }
        chainBytes = Self.chainBytes(infos: missing, references: references, dependents: dependents)
        progress = Array(repeating: .waiting, count: missing.count)
        needsStoredReferences = Array(repeating: !overlapping, count: missing.count)
        for position in missing.indices where references[position].isEmpty { makeReady(position) }
    }

    /// Each path's NAR size plus the heaviest chain of its dependents, from the paths no other refers to down.
    private static func chainBytes(infos: [LocalPathInfo], references: [[Int]], dependents: [[Int]]) -> [UInt64] {
        var bytes = infos.map(\.narSize)
        var unresolved = dependents.map(\.count)
        var next = unresolved.indices.filter { unresolved[$0] == 0 }
        while let position = next.popLast() {
            bytes[position] = infos[position].narSize &+ (dependents[position].map { bytes[$0] }.max() ?? 0)
            for reference in references[position] {
                unresolved[reference] -= 1
                if unresolved[reference] == 0 { next.append(reference) }
            }
        }
        return bytes
    }

    var isComplete: Bool { storedCount == infos.count }
    var hasReady: Bool { !ready.isEmpty }
    var nextReady: Int? { ready.last }

    /// Takes the most urgent ready path and marks it started.
    mutating func startNext() -> Int? {
        guard let position = ready.popLast() else { return nil }
        progress[position] = .started
        for dependent in dependents[position] where progress[dependent] == .waiting { readyIfDue(dependent) }
        return position
    }

    mutating func stored(_ position: Int) {
        guard progress[position] != .stored else { return }
        progress[position] = .stored
        storedCount += 1
        for dependent in dependents[position] where progress[dependent] == .waiting { readyIfDue(dependent) }
    }

    /// The server refused the path for want of its references: it goes again once they are stored.
    mutating func awaitStoredReferences(_ position: Int) {
        needsStoredReferences[position] = true
        progress[position] = .waiting
        readyIfDue(position)
    }

    /// A path whose attempt failed transiently, due again after its backoff.
    mutating func retry(_ position: Int) {
        progress[position] = .waiting
        readyIfDue(position)
    }

    /// The paths not stored yet that refer to `position`, directly or through others.
    func unstoredDependents(of position: Int) -> [String] {
        var seen: Set<Int> = [position]
        var next = [position]
        var found: [String] = []
        while let current = next.popLast() {
            for dependent in dependents[current] where seen.insert(dependent).inserted {
                if progress[dependent] != .stored { found.append(infos[dependent].path.path) }
                next.append(dependent)
            }
        }
        return found.sorted()
    }

    private mutating func readyIfDue(_ position: Int) {
        let due = references[position].allSatisfy { reference in
            progress[reference] == .stored
                || (!needsStoredReferences[position] && progress[reference] == .started)
        }
        if due { makeReady(position) }
    }

    private mutating func makeReady(_ position: Int) {
        progress[position] = .ready
        let key = (chainBytes[position], infos[position].narSize)
        var low = 0
        var high = ready.count
        while low < high {
            let middle = (low + high) / 2
            if (chainBytes[ready[middle]], infos[ready[middle]].narSize) < key {
                low = middle + 1
            } else {
                high = middle
            }
        }
        ready.insert(position, at: low)
    }
}
