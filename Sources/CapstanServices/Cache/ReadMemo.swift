import CapstanStorage
import NIOCore
import Synchronization

/// A bounded map that keeps what was used recently: two generations of at most `capacity`
/// entries; a hit in the old one moves the entry to the young one, and when the young one is
/// full it replaces the old one (dropping whatever was not used since). Every operation is O(1).
struct RecentlyUsedMap<Key: Hashable, Value> {
    private var young: [Key: Value] = [:]
    private var old: [Key: Value] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    var count: Int { young.count + old.count }

    mutating func value(for key: Key) -> Value? {
        if let value = young[key] { return value }
        guard let value = old.removeValue(forKey: key) else { return nil }
        insert(value, for: key)
        return value
    }

    mutating func insert(_ value: Value, for key: Key) {
        if young[key] == nil, young.count >= capacity {
            old = young
            young = [:]
        }
        young[key] = value
    }

    mutating func removeValue(for key: Key) {
        young[key] = nil
        old[key] = nil
    }

    mutating func removeAll() {
        young = [:]
        old = [:]
    }
}

/// What the binary-cache routes read on every request: cache rows and the rendered narinfo of
/// stored paths. Only found rows are kept: a miss always asks the database again, so a path pushed
/// through another server sharing the database shows up at once. A path removed (garbage
/// collection, `cache rm`, a repair) or a cache reconfigured is forgotten through `forget(cacheID:)`
/// here and, through the event bus, on every replica; a narinfo is also kept no longer than
/// `narInfoLifetime`, so that one replica missing that event serves a removed path's narinfo at
/// most that long, well within the grace period before its blob may go. What was read from the
/// database before a `forget` is not kept after it: a reader takes the `generation` before its
/// query and `remember` drops what an older generation read. Authorisation is not memoised here;
/// callers check it on every request.
final class ReadMemo: Sendable {
    private struct MemoizedNarInfo {
        var text: ByteBuffer
        var expires: ContinuousClock.Instant
    }

    private let caches: Mutex<RecentlyUsedMap<CacheLookup, CacheRecord>>
    private let narInfos: Mutex<RecentlyUsedMap<NarInfoKey, MemoizedNarInfo>>
    private let forgetting = Atomic<UInt64>(0)
    let narInfoLifetime: Duration

    /// A cache name as one caller's workspace resolves it (its own cache first, else a public one).
    struct CacheLookup: Hashable {
        var workspaceID: String?
        var name: String
    }

    struct NarInfoKey: Hashable {
        var cacheID: String
        var hashPart: String
    }

    /// `narInfoCapacity` narinfo texts per generation (about 0.5–2 KiB each).
    init(cacheCapacity: Int = 256, narInfoCapacity: Int = 8192, narInfoLifetime: Duration = .seconds(60)) {
        caches = Mutex(RecentlyUsedMap(capacity: cacheCapacity))
        narInfos = Mutex(RecentlyUsedMap(capacity: narInfoCapacity))
        self.narInfoLifetime = narInfoLifetime
    }

    /// What `name` resolved to for a caller of `workspaceID` (nil: a caller without a workspace).
    func cache(named name: String, for workspaceID: String?) -> CacheRecord? {
        caches.withLock { $0.value(for: CacheLookup(workspaceID: workspaceID, name: name)) }
    }

    /// Taken before reading what is then remembered: a `forget` in between makes that read stale.
    var generation: UInt64 { forgetting.load(ordering: .acquiring) }

    func remember(_ cache: CacheRecord, named name: String, for workspaceID: String?, readAt generation: UInt64) {
        caches.withLock { map in
            guard self.generation == generation else { return }
            map.insert(cache, for: CacheLookup(workspaceID: workspaceID, name: name))
        }
    }

    func narInfo(cacheID: String, hashPart: String) -> ByteBuffer? {
        let key = NarInfoKey(cacheID: cacheID, hashPart: hashPart)
        let now = ContinuousClock.now
        return narInfos.withLock { map in
            guard let entry = map.value(for: key) else { return nil }
            guard entry.expires > now else {
                map.removeValue(for: key)
                return nil
            }
            return entry.text
        }
    }

    func remember(narInfo: ByteBuffer, cacheID: String, hashPart: String, readAt generation: UInt64) {
        let entry = MemoizedNarInfo(text: narInfo, expires: .now + narInfoLifetime)
        narInfos.withLock { map in
            // Checked under the lock `forget` takes after counting: a forget is either seen here or comes after.
            guard self.generation == generation else { return }
            map.insert(entry, for: NarInfoKey(cacheID: cacheID, hashPart: hashPart))
        }
    }

    /// Forgets everything about caches: paths were removed or settings changed (rare, so everything
    /// goes rather than indexing entries by cache).
    func forget(cacheID: String) {
        _ = cacheID
        forgetting.add(1, ordering: .releasing)
        caches.withLock { $0.removeAll() }
        narInfos.withLock { $0.removeAll() }
    }
}

/// Tokens recently seen valid, by the SHA-256 of their secret, for `lifetime`: saves the
/// database lookup on every request of a private cache. A revocation through this server drops
/// the entry at once; one through another server sharing the database takes effect within
/// `lifetime`.
final class PrincipalMemo: Sendable {
    private struct Entry {
        var principal: Principal
        var expires: ContinuousClock.Instant
    }

    private let entries: Mutex<RecentlyUsedMap<String, Entry>>
    let lifetime: Duration

    init(capacity: Int = 1024, lifetime: Duration = .seconds(5)) {
        entries = Mutex(RecentlyUsedMap(capacity: capacity))
        self.lifetime = lifetime
    }

    func principal(secretHash: String) -> Principal? {
        let now = ContinuousClock.now
        return entries.withLock { map in
            guard let entry = map.value(for: secretHash) else { return nil }
            guard entry.expires > now else {
                map.removeValue(for: secretHash)
                return nil
            }
            return entry.principal
        }
    }

    func remember(_ principal: Principal, secretHash: String) {
        let entry = Entry(principal: principal, expires: .now + lifetime)
        entries.withLock { $0.insert(entry, for: secretHash) }
    }

    func forget(tokenID: String) {
        // Revocations are rare: drop everything rather than index entries by token id.
        _ = tokenID
        entries.withLock { $0.removeAll() }
    }
}
