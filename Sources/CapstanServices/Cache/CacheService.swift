import CapstanModel
import CapstanStorage
import Compression
import Foundation
import Logging
import NIOCore
import NixCore

/// The rules of binary caches: who may read and write them, and what makes a path visible
/// (its NAR stored and its NarHash and NarSize checked by the server, its narinfo signed).
public struct CacheService: Sendable {
    public static let storeDir = "/nix/store"
    public static let defaultPriority = 41

    let store: CapstanStore
    let blobs: any BlobStore
    let publicURL: String
    let maxNarSize: UInt64
    /// When set, caches are also served at `<cache>.<host>` and new keys are named after it.
    public let cacheHost: CacheHost?
    let logger: Logger
    let memo: ReadMemo
    let audit: AuditLog
    let uploadLimits: UploadLimits
    public let lifecycle: CacheLifecycleSettings
    /// Tells every replica what to forget when paths are removed; nil: this process only.
    let events: EventBus?
    let accessLog = CacheAccessLog()
    /// Made once: a request counts through a kept handle rather than a lookup in the metrics backend.
    let counters = ServerMetrics.CacheCounters()
    /// Wakes uploads waiting for their references when this process stores a path.
    let arrivals = PathArrivals()
    /// With an object store: NAR downloads are redirected to presigned URLs instead of streamed.
    let narRedirect: Bool

    public init(
        store: CapstanStore, blobs: any BlobStore, publicURL: String, maxNarSize: UInt64, cacheHost: CacheHost? = nil,
        uploadLimits: UploadLimits = UploadLimits(), lifecycle: CacheLifecycleSettings = CacheLifecycleSettings(),
        events: EventBus? = nil, narRedirect: Bool = false, logger: Logger
    ) {
        self.store = store
        self.blobs = blobs
        self.publicURL = publicURL
        self.maxNarSize = maxNarSize
        self.cacheHost = cacheHost
        self.uploadLimits = uploadLimits
        self.lifecycle = lifecycle
        self.events = events
        self.narRedirect = narRedirect
        self.logger = logger
        memo = ReadMemo(narInfoLifetime: lifecycle.narInfoLifetime)
        audit = AuditLog(store: store, logger: logger)
    }

    // MARK: Caches

    public func create(_ request: CreateCacheRequest, by principal: Principal) async throws -> CacheInfo {
        try AccessPolicy.require(.createCache, by: principal)
        do {
            try ResourceName.validate(request.name, what: "cache")
        } catch {
            throw ServiceError.badRequest(error.description)
        }
        let compression = try Self.compression(named: request.compression ?? "zstd", field: "compression")
        // Named as cachix agents expect it when caches have host names of their own.
        let keyName = request.keyName ?? cacheHost?.keyName(forCache: request.name) ?? "\(request.name)-1"
        // Nix reads keys as `name:base64`, listed with spaces between them: no ':' and no blanks in a name.
        guard !keyName.isEmpty, keyName.utf8.count <= 200, !keyName.contains(":"),
            keyName.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f })
        else {
            throw ServiceError.badRequest(
                "key name '\(keyName)' must be 1 to 200 printable ASCII characters, with no ':' and no spaces")
        }
        let key = try NixSecretKey.generate(name: keyName)
        let record = CacheRecord(
            id: UUID().uuidString.lowercased(), workspaceID: principal.workspaceID, name: request.name,
            isPublic: request.isPublic, keyName: keyName, secretKey: key.rendered,
            publicKey: key.publicKey.rendered, compression: compression.rawValue, priority: Self.defaultPriority,
            createdAt: Date())
        do {
            try await store.insertCache(record)
        } catch StorageError.duplicate(let what, _) {
            // Only this workspace's names and public names can be taken: neither reveals another's private cache.
            throw ServiceError.conflict(
                what == "public cache"
                    ? "a public cache named '\(request.name)' already exists; choose another name"
                    : "a cache named '\(request.name)' already exists in this workspace")
        }
        // A caller who resolved this name to a public cache of another workspace now means this one.
        await forget(cacheID: record.id)
        logger.info("cache created", metadata: ["cache": "\(request.name)", "public": "\(request.isPublic)"])
        await audit.record(
            .cacheCreated, by: principal, target: request.name, detail: request.isPublic ? "public" : "private")
        return try await info(record)
    }

    public func list(by principal: Principal) async throws -> [CacheInfo] {
        var result: [CacheInfo] = []
        for cache in try await store.caches(workspaceID: principal.workspaceID)
        where AccessPolicy.allows(principal, .readCache(cache)) {
            result.append(try await info(cache))
        }
        return result
    }

    public func info(_ cache: CacheRecord) async throws -> CacheInfo {
        let stats = try await store.stats(cacheID: cache.id)
        return CacheInfo(
            name: cache.name, isPublic: cache.isPublic, publicKey: cache.publicKey, compression: cache.compression,
            storeDir: Self.storeDir, priority: cache.priority, url: substituterURL(cache), pathCount: stats.pathCount,
            narSize: stats.narSize, fileSize: stats.fileSize, createdAt: cache.createdAt,
            retention: CacheRetention(
                retention: cache.retentionSeconds.map { TimeSpan(.seconds($0)) }, maxSize: cache.maxSize,
                keepGenerations: cache.keepGenerations, lastGC: cache.lastGCAt))
    }

    public func substituterURL(_ cache: CacheRecord) -> String { "\(publicURL)/cache/\(cache.name)" }

    /// `http(s)://<cache>.<host>` when a cache host is configured, else the path-style URL.
    public func hostedURL(_ cache: CacheRecord) -> String {
        cacheHost?.url(forCache: cache.name, publicURL: publicURL) ?? substituterURL(cache)
    }

    /// The cache if the caller may read it. A name means the caller's workspace's cache of that
    /// name, else the public cache of that name. A caller without a token who names no public cache is
    /// asked to authenticate, whether or not some workspace has a private cache of that name; a
    /// token of another workspace learns nothing either: the same 404 as for a name nobody uses.
    public func readableCache(named name: String, by principal: Principal?) async throws -> CacheRecord {
        guard let cache = try await cache(named: name, for: principal) else {
            if principal == nil {
                throw ServiceError.unauthorized(
                    "cache '\(name)' is not a public cache: send a token of its workspace (Bearer, or as the netrc password)"
                )
            }
            throw ServiceError.notFound("cache '\(name)' does not exist")
        }
        try AccessPolicy.requireRead(cache, by: principal)
        return cache
    }

    public func writableCache(named name: String, by principal: Principal?) async throws -> CacheRecord {
        guard principal != nil else {
            throw ServiceError.unauthorized("writing to cache '\(name)' needs a push token")
        }
        guard let cache = try await cache(named: name, for: principal) else {
            throw ServiceError.notFound("cache '\(name)' does not exist")
        }
        try AccessPolicy.requireWrite(cache, by: principal)
        return cache
    }

    /// The cache `name` means to this caller, from memory when it was resolved before (a created or
    /// reconfigured cache makes every replica forget what it resolved).
    func cache(named name: String, for principal: Principal?) async throws -> CacheRecord? {
        let workspaceID = principal?.workspaceID
        if let cache = memo.cache(named: name, for: workspaceID) { return cache }
        let generation = memo.generation
        guard let cache = try await store.cache(resolving: name, for: workspaceID) else { return nil }
        memo.remember(cache, named: name, for: workspaceID, readAt: generation)
        return cache
    }

    // MARK: Reading

    public func missing(in cache: CacheRecord, hashes: [String]) async throws -> [String] {
        for hash in hashes where hash.utf8.count != 32 || !Nix32.isValid(Substring(hash)) {
            throw ServiceError.badRequest("'\(hash)' is not a store path hash (32 nix32 characters)")
        }
        let missing = try await store.missingHashes(cacheID: cache.id, hashes: hashes)
        accessLog.used(cacheID: cache.id, hashParts: Set(hashes).subtracting(missing))
        return missing
    }

    public func narInfo(in cache: CacheRecord, hashPart: String) async throws -> String? {
        try await narInfoText(in: cache, hashPart: hashPart).map { String(buffer: $0) }
    }

    /// The narinfo as served: rendered once, then kept in memory (a stored path never changes).
    public func narInfoText(in cache: CacheRecord, hashPart: String) async throws -> ByteBuffer? {
        if let text = rememberedNarInfo(in: cache, hashPart: hashPart) { return text }
        // Taken before the query: a path removed meanwhile is served this once, never remembered.
        let generation = memo.generation
        guard let path = try await store.path(cacheID: cache.id, hashPart: hashPart) else {
            ServerMetrics.cacheRequest(kind: "narinfo", result: "miss")
            accessLog.narInfo(cacheID: cache.id, hashPart: hashPart, found: false)
            return nil
        }
        counters.narInfoHits.increment()
        accessLog.narInfo(cacheID: cache.id, hashPart: hashPart, found: true)
        let rendered: String
        do {
            rendered = try Self.narInfo(for: path).rendered()
        } catch {
            // Stored before fields were validated: never served, whatever it holds.
            logger.error(
                "refusing to serve a stored narinfo with an invalid field; remove the path and push it again",
                metadata: ["cache": "\(cache.name)", "path": "\(path.storePath)", "error": "\(error)"])
            return nil
        }
        let text = ByteBuffer(string: rendered)
        memo.remember(narInfo: text, cacheID: cache.id, hashPart: hashPart, readAt: generation)
        return text
    }

    /// The narinfo served from memory, counted and logged as used like any other hit.
    private func rememberedNarInfo(in cache: CacheRecord, hashPart: String) -> ByteBuffer? {
        guard let text = memo.narInfo(cacheID: cache.id, hashPart: hashPart) else { return nil }
        counters.narInfoHits.increment()
        accessLog.narInfo(cacheID: cache.id, hashPart: hashPart, found: true)
        return text
    }

    /// What `narInfoText` serves to `principal` for `hashPart` of the cache `name` means to it, when
    /// memory alone tells: the name resolved before, the caller allowed to read the cache (the same
    /// `AccessPolicy.requireRead` as `readableCache`), the narinfo rendered before. Nil whenever the
    /// answer needs the database or would not be that narinfo (a refusal, a miss); the caller then asks
    /// the full way. Synchronous, for answering on a connection's event loop.
    public func rememberedNarInfo(cacheNamed name: String, hashPart: String, by principal: Principal?) -> ByteBuffer? {
        guard let cache = memo.cache(named: name, for: principal?.workspaceID),
            (try? AccessPolicy.requireRead(cache, by: principal)) != nil
        else { return nil }
        return rememberedNarInfo(in: cache, hashPart: hashPart)
    }

    /// The stored NAR behind `nar/<fileName>` if this cache holds a path stored in it.
    public func nar(in cache: CacheRecord, fileName: String) async throws -> StoredNar? {
        guard try await store.path(cacheID: cache.id, fileName: fileName) != nil else {
            ServerMetrics.cacheRequest(kind: "nar", result: "miss")
            return nil
        }
        let size = try await blobs.size(of: .nar(fileName))
        ServerMetrics.cacheRequest(kind: "nar", result: size != nil ? "hit" : "miss")
        if size != nil { accessLog.narDownload(cacheID: cache.id, fileName: fileName) }
        return size.map { StoredNar(key: .nar(fileName), size: $0) }
    }

    /// Where to send a NAR download instead of streaming it, when the server is set to redirect
    /// and the blob store can presign URLs (valid for an hour).
    public func redirectURL(of nar: StoredNar) -> String? {
        guard narRedirect else { return nil }
        return blobs.presignedURL(of: nar.key, expires: 3600)
    }

    /// The bytes of a stored NAR (those in `range`): a local file the HTTP layer may send as it is,
    /// or a stream read from the blob store.
    public func content(of nar: StoredNar, range: Range<Int64>) async throws -> NarContent {
        if let path = blobs.localFile(of: nar.key) { return .file(path) }
        guard let bytes = try await blobs.read(nar.key, range: range) else {
            throw ServiceError.notFound("\(nar.key) is gone from the blob store")
        }
        return .stream(bytes)
    }

    static func narInfo(for path: PathRecord) throws -> NarInfo {
        NarInfo(
            storePath: path.storePath, url: "nar/\(path.fileName)", compression: path.compression,
            fileHash: try NixHash(parsing: path.fileHash), fileSize: UInt64(path.fileSize),
            narHash: try NixHash(parsing: path.narHash), narSize: UInt64(path.narSize),
            references: try path.references.map { try StorePath(baseName: $0) }, deriver: path.deriver,
            sigs: path.sigs, ca: path.ca)
    }

    // MARK: Writing

    /// Streams one path's NAR (compressed in transit with `transit`) into the cache, checking
    /// the declared NarHash and NarSize before anything becomes visible. With `awaitingReferences`,
    /// the path is stored only once the cache holds every path it references, waiting for them
    /// (see `ReferenceWait`); without it, references are not checked.
    public func upload<Body: AsyncSequence>(
        to cache: CacheRecord, info: PathUploadInfo, transit: CompressionMethod, body: Body,
        awaitingReferences wait: ReferenceWait? = nil
    ) async throws -> PathUploadResult where Body.Element == ByteBuffer {
        try await countingRejections {
            try await checkedUpload(to: cache, info: info, transit: transit, body: body, wait: wait)
        }
    }

    private func checkedUpload<Body: AsyncSequence>(
        to cache: CacheRecord, info: PathUploadInfo, transit: CompressionMethod, body: Body, wait: ReferenceWait?
    ) async throws -> PathUploadResult where Body.Element == ByteBuffer {
        let storePath = info.storePath
        let declaredHash: NixHash
        let references: [StorePath]
        do {
            declaredHash = try NixHash(parsing: info.narHash)
            references = try info.references.map { try Self.storePath(fromReference: $0) }
            // Every declared field as Nix's narinfo parser reads it: nothing can add a line.
            _ = try NarInfo(
                validating: storePath, url: "nar/pending", narHash: declaredHash, narSize: info.narSize,
                references: references, deriver: info.deriver.map { Self.baseName($0) }, sigs: info.sigs, ca: info.ca)
        } catch {
            throw ServiceError.badRequest("path info for \(info.storePath): \(error)")
        }
        guard declaredHash.algorithm == .sha256 else {
            throw ServiceError.badRequest("NarHash of \(info.storePath) must be sha256, got \(declaredHash.algorithm)")
        }
        if let existing = try await store.path(cacheID: cache.id, hashPart: storePath.hashPart) {
            for try await _ in body {}
            return try lostRace(to: existing, in: cache, narHash: declaredHash).uploadResult
        }
        let stored = try Self.compression(named: cache.compression, field: "cache compression")
        let (result, writer) = try await NarIngest.run(
            body, blobs: blobs, transit: transit, stored: stored, maxNarSize: maxNarSize,
            upload: "upload of \(info.storePath)")
        try await checkDeclared(
            storePath: storePath, declaredHash: declaredHash, declaredSize: info.narSize, actual: result,
            writer: writer)
        let outcome = try await commit(
            cache: cache, storePath: storePath, references: references, deriver: info.deriver, clientSigs: info.sigs,
            ca: info.ca, compression: stored, result: result, writer: writer, awaitingReferences: wait)
        return outcome.uploadResult
    }

    /// First half of Nix's own HTTP upload: the compressed NAR, kept aside until its narinfo arrives.
    /// `expectedSize` (the request's Content-Length) is reserved against the cache's bound before a byte is read.
    public func stageNar<Body: AsyncSequence>(
        in cache: CacheRecord, fileName: String, expectedSize: UInt64? = nil, body: Body
    ) async throws where Body.Element == ByteBuffer {
        try await countingRejections {
            try await checkedStageNar(in: cache, fileName: fileName, expectedSize: expectedSize, body: body)
        }
    }

    private func checkedStageNar<Body: AsyncSequence>(
        in cache: CacheRecord, fileName: String, expectedSize: UInt64?, body: Body
    ) async throws where Body.Element == ByteBuffer {
        try Self.validateNarFileName(fileName)
        if let expectedSize, expectedSize > maxNarSize {
            throw ServiceError(.payloadTooLarge, "nar/\(fileName) is larger than this server accepts")
        }
        var reservation = try await reserveUpload(in: cache, expectedSize: expectedSize)
        let staged = BlobKey.staged(cacheID: cache.id, fileName: fileName)
        var size: UInt64 = 0
        do {
            let writer = try await blobs.makeWriter()
            do {
                for try await buffer in body {
                    size += UInt64(buffer.readableBytes)
                    guard size <= maxNarSize else {
                        throw ServiceError(.payloadTooLarge, "nar/\(fileName) is larger than this server accepts")
                    }
                    try await reservation.cover(size)
                    try await writer.write(buffer)
                }
                try await writer.commit(as: staged)
            } catch {
                await writer.discard()
                throw error
            }
            try await reservation.settle(as: staged, bytes: size)
        } catch {
            await reservation.release()
            throw error
        }
        logger.debug("NAR staged", metadata: ["cache": "\(cache.name)", "file": "\(fileName)", "bytes": "\(size)"])
    }

    /// Second half of Nix's HTTP upload: the narinfo names a staged NAR, which is checked
    /// against it (NarHash, NarSize, FileHash, FileSize) before the path becomes visible.
    public func putNarInfo(in cache: CacheRecord, hashPart: String, text: String) async throws {
        try await countingRejections { try await checkedPutNarInfo(in: cache, hashPart: hashPart, text: text) }
    }

    /// Uploads refused for what they contain (not for who sent them) are counted for `/metrics`.
    private func countingRejections<R>(_ operation: () async throws -> R) async throws -> R {
        do {
            return try await operation()
        } catch let error as ServiceError {
            switch error.kind {
            case .badRequest: ServerMetrics.uploadRejected(reason: "invalid")
            case .payloadTooLarge: ServerMetrics.uploadRejected(reason: "too_large")
            default: break
            }
            throw error
        }
    }

    private func checkedPutNarInfo(in cache: CacheRecord, hashPart: String, text: String) async throws {
        let info: NarInfo
        do {
            info = try NarInfo(parsing: text)
        } catch {
            throw ServiceError.badRequest("\(hashPart).narinfo: \(error)")
        }
        guard info.storePath.hashPart == hashPart else {
            throw ServiceError.badRequest(
                "\(hashPart).narinfo describes \(info.storePath.path), whose hash part differs from the file name")
        }
        guard info.url.hasPrefix("nar/") else {
            throw ServiceError.badRequest("\(hashPart).narinfo: URL '\(info.url)' must point into nar/")
        }
        let fileName = String(info.url.dropFirst(4))
        try Self.validateNarFileName(fileName)
        let transit = try Self.compression(named: info.compression, field: "\(hashPart).narinfo Compression")
        let staged = BlobKey.staged(cacheID: cache.id, fileName: fileName)
        if let existing = try await store.path(cacheID: cache.id, hashPart: hashPart) {
            await removeStaged(staged)
            _ = try lostRace(to: existing, in: cache, narHash: info.narHash)
            return
        }
        guard let stagedBytes = try await blobs.read(staged) else {
            // Another upload of the same NAR may have stored the path and removed the staged file meanwhile.
            if let existing = try await store.path(cacheID: cache.id, hashPart: hashPart) {
                _ = try lostRace(to: existing, in: cache, narHash: info.narHash)
                return
            }
            throw ServiceError.badRequest(
                "\(hashPart).narinfo names \(info.url), which was not uploaded to this cache; upload the NAR first")
        }
        // Whatever the narinfo's fate, the staged NAR has served its purpose: it never lingers.
        do {
            let stored = try Self.compression(named: cache.compression, field: "cache compression")
            let (result, writer) = try await NarIngest.run(
                stagedBytes, blobs: blobs, transit: transit, stored: stored, maxNarSize: maxNarSize, hashTransit: true,
                upload: info.url)
            if let fileHash = info.fileHash, let transitHash = result.transitHash, fileHash != transitHash {
                await writer.discard()
                throw ServiceError.badRequest(
                    "\(hashPart).narinfo: FileHash \(fileHash.narInfoString) does not match the uploaded \(info.url) "
                        + "(\(transitHash.narInfoString))")
            }
            if let fileSize = info.fileSize, fileSize != result.transitSize {
                await writer.discard()
                throw ServiceError.badRequest(
                    "\(hashPart).narinfo: FileSize \(fileSize) does not match the uploaded \(info.url) (\(result.transitSize) bytes)"
                )
            }
            try await checkDeclared(
                storePath: info.storePath, declaredHash: info.narHash, declaredSize: info.narSize, actual: result,
                writer: writer)
            _ = try await commit(
                cache: cache, storePath: info.storePath, references: info.references, deriver: info.deriver,
                clientSigs: info.sigs, ca: info.ca, compression: stored, result: result, writer: writer)
        } catch {
            await removeStaged(staged)
            throw error
        }
        await removeStaged(staged)
    }

    private func checkDeclared(
        storePath: StorePath, declaredHash: NixHash, declaredSize: UInt64, actual: IngestResult, writer: any BlobWriter
    ) async throws {
        if declaredHash != actual.narHash {
            await writer.discard()
            logger.warning("upload rejected: NarHash mismatch", metadata: ["path": "\(storePath)"])
            throw ServiceError.badRequest(
                "NAR hash mismatch for \(storePath): declared \(declaredHash.narInfoString), "
                    + "received \(actual.narHash.narInfoString); nothing was stored")
        }
        if declaredSize != actual.narSize {
            await writer.discard()
            throw ServiceError.badRequest(
                "NAR size mismatch for \(storePath): declared \(declaredSize) bytes, received \(actual.narSize); "
                    + "nothing was stored")
        }
    }

    /// Signs the narinfo, puts the checked blob in place under its content key, then in one
    /// transaction (which only records rows, however slow the blob store) decides whether this
    /// upload wins the path and makes it visible. A crash at any point leaves no visible half-path;
    /// a blob put in place for a path that was not recorded is left to garbage collection.
    ///
    /// The blob may be one garbage collection found unused (the same NAR stored before): it is
    /// reclaimed first, which waits for a deletion in progress, and the path must become visible
    /// well within the grace period after that, or be found with its blob still there, or the
    /// upload gives up (see `deleteUnusedBlobs`).
    ///
    /// With `awaitingReferences`, the path is recorded only when the cache holds every path it references:
    /// room to wait is taken before the blob is put in place (no room: refused, nothing stored), the wait
    /// comes after it (so the blob's write is not on the way of the paths that wait for this one), and a
    /// wait that ends unstored leaves the blob to garbage collection.
    private func commit(
        cache: CacheRecord, storePath: StorePath, references: [StorePath], deriver: String?, clientSigs: [String],
        ca: String?, compression: CompressionMethod, result: IngestResult, writer: any BlobWriter,
        awaitingReferences wait: ReferenceWait? = nil
    ) async throws -> CommitOutcome {
        var hold: ReferenceHold?
        if let wait {
            do {
                hold = try await holdForReferences(
                    of: storePath, references, in: cache, fileSize: result.fileSize, wait: wait)
            } catch {
                await writer.discard()
                throw error
            }
        }
        do {
            let outcome = try await place(
                cache: cache, storePath: storePath, references: references, deriver: deriver, clientSigs: clientSigs,
                ca: ca, compression: compression, result: result, writer: writer, requiringReferences: wait != nil,
                hold: hold)
            await hold?.reservation.release()
            return outcome
        } catch {
            await hold?.reservation.release()
            throw error
        }
    }

    private func place(
        cache: CacheRecord, storePath: StorePath, references: [StorePath], deriver: String?, clientSigs: [String],
        ca: String?, compression: CompressionMethod, result: IngestResult, writer: any BlobWriter,
        requiringReferences: Bool, hold: ReferenceHold?
    ) async throws -> CommitOutcome {
        let fileName = result.fileHash.digest(.nix32) + ".nar" + compression.fileExtension
        // From here on, an orphan record of this blob can only be younger than `reclaimed`.
        let reclaimed = ContinuousClock.now
        do {
            if try await store.isOrphanBlob(fileName: fileName) {
                try await store.reclaimOrphanBlob(fileName: fileName)
            }
        } catch {
            await writer.discard()
            throw error
        }
        let secretKey = try NixSecretKey(parsing: cache.secretKey)
        var narInfo = NarInfo(
            storePath: storePath, url: "nar/\(fileName)", compression: compression.rawValue,
            fileHash: result.fileHash, fileSize: result.fileSize, narHash: result.narHash, narSize: result.narSize,
            references: references, deriver: deriver.map { Self.baseName($0) }, sigs: [], ca: ca)
        narInfo.sign(with: secretKey)
        let otherSigs = clientSigs.filter { !$0.hasPrefix(cache.keyName + ":") }
        let record = PathRecord(
            cacheID: cache.id, hashPart: storePath.hashPart, storePath: storePath,
            narHash: result.narHash.narInfoString, narSize: Int64(result.narSize), fileName: fileName,
            fileHash: result.fileHash.narInfoString, fileSize: Int64(result.fileSize),
            compression: compression.rawValue, references: references.map(\.baseName).sorted(),
            deriver: narInfo.deriver, sigs: narInfo.sigs + otherSigs, ca: ca, createdAt: Date())
        do {
            try await writer.commit(as: .nar(fileName))
        } catch {
            await writer.discard()
            await leaveToCollection(fileName)
            throw error
        }
        if let hold {
            do {
                try await awaitReferences(hold)
            } catch {
                await leaveToCollection(fileName)
                throw error
            }
        }
        let insertion: PathInsertion
        do {
            // Judged at the last moment inside the transaction: a collection may delete a blob no path
            // uses once the grace period has passed since it found it unused. Later than that, the path
            // is recorded only if its blob is still there.
            let deadline = reclaimed + lifecycle.uploadCommitDeadline
            let blobs = blobs
            insertion = try await store.insertPath(
                record, whileInTime: { ContinuousClock.now < deadline },
                orWhileBlobIsThere: { try await blobs.size(of: .nar(fileName)) != nil },
                requiringReferences: requiringReferences)
        } catch {
            await leaveToCollection(fileName)
            throw error
        }
        switch insertion {
        case .inserted:
            arrivals.stored(inCache: cache.id)
            logger.info(
                "path stored",
                metadata: [
                    "cache": "\(cache.name)", "path": "\(storePath.path)", "narSize": "\(result.narSize)",
                    "fileSize": "\(result.fileSize)",
                ])
            return .stored(record)
        case .tooLate:
            // A collection deleted the blob while this upload was late: have the client try again.
            await leaveToCollection(fileName)
            throw ServiceError(
                .unavailable,
                "storing \(storePath.path) took so long that its NAR was deleted as unused meanwhile; upload it again")
        case .referencesMissing(let missing):
            // Only after a wait found them there: one was removed meanwhile.
            await leaveToCollection(fileName)
            throw referencesMissing(storePath, missing, among: references)
        case .present(let winner):
            // Lost the race: unless a path uses this blob (the winner's, stored the same), it is unused.
            await leaveToCollection(fileName)
            return try lostRace(to: winner, in: cache, narHash: result.narHash)
        }
    }

    /// A blob put in place for a path that was not recorded: recorded as unused unless a path uses it,
    /// so garbage collection deletes it after the grace period. It is not deleted at once: another
    /// upload of the same NAR may have put it in place too and be about to record its path.
    private func leaveToCollection(_ fileName: String) async {
        do {
            try await store.addOrphanBlobs([fileName], at: Date())
        } catch {
            logger.warning(
                "could not record an unused blob; the next collection finds it",
                metadata: ["file": "\(fileName)", "error": "\(error)"])
        }
    }

    /// The answer to an upload of a path the cache already holds: the stored path when the NAR is the
    /// same, a conflict naming the path and the NarHash the cache holds when it differs.
    func lostRace(to winner: PathRecord, in cache: CacheRecord, narHash: NixHash) throws -> CommitOutcome {
        guard winner.narHash == narHash.narInfoString else {
            logger.warning(
                "upload refused: the cache holds the path with another NAR",
                metadata: ["cache": "\(cache.name)", "path": "\(winner.storePath)", "narHash": "\(winner.narHash)"])
            throw ServiceError.conflict(
                "cache '\(cache.name)' already holds \(winner.storePath) with NarHash \(winner.narHash); "
                    + "this upload's NAR has \(narHash.narInfoString) and was not stored")
        }
        accessLog.used(cacheID: cache.id, hashParts: [winner.hashPart])
        logger.info("path already present", metadata: ["cache": "\(cache.name)", "path": "\(winner.storePath)"])
        return .alreadyPresent(winner)
    }

    // MARK: Helpers

    /// A supported compression from any of its names; `field` names where it came from in the error.
    public static func compression(named name: String, field: String) throws -> CompressionMethod {
        guard let method = try? CompressionMethod(parsing: name), method.isSupported else {
            throw ServiceError.badRequest("\(field): compression '\(name)' is not supported; use zstd, xz or none")
        }
        return method
    }

    static func storePath(fromReference reference: String) throws -> StorePath {
        reference.hasPrefix("/") ? try StorePath(parsing: reference) : try StorePath(baseName: reference)
    }

    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    static func validateNarFileName(_ name: String) throws {
        let valid =
            !name.isEmpty && name.utf8.count <= 128 && !name.hasPrefix(".")
            && name.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            }
        guard valid else { throw ServiceError.badRequest("'nar/\(name)' is not a valid NAR file name") }
    }
}

/// How a checked upload ended: its path stored, or the cache's own path with the same NAR kept.
enum CommitOutcome {
    case stored(PathRecord)
    case alreadyPresent(PathRecord)

    var uploadResult: PathUploadResult {
        switch self {
        case .stored(let record), .alreadyPresent(let record):
            let present = if case .alreadyPresent = self { true } else { false }
            return PathUploadResult(
                storePath: record.storePath, narHash: record.narHash, narSize: UInt64(record.narSize),
                fileHash: record.fileHash, fileSize: UInt64(record.fileSize), alreadyPresent: present)
        }
    }
}

/// A NAR a cache serves: where its bytes are, and how many.
public struct StoredNar: Sendable {
    public var key: BlobKey
    public var size: Int64
}

/// How the HTTP layer sends a NAR's bytes.
public enum NarContent: Sendable {
    /// A local file holding exactly the blob: sent from the file (sendfile where possible).
    case file(String)
    /// The bytes in order, read from the blob store as the client takes them.
    case stream(BlobBytes)
}
