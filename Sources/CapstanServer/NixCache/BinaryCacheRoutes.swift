import CapstanServices
import Foundation
import Hummingbird
import NIOCore

/// Nix's HTTP binary cache protocol, one cache per `/cache/NAME/`: what `nix` substitutes
/// from and what `nix copy --to http://…` uploads to.
struct BinaryCacheRoutes: Sendable {
    let caches: CacheService

    func register(on router: Router<CapstanRequestContext>) {
        let group = router.group("cache/:cache")
        let name: @Sendable (Request, CapstanRequestContext) throws -> String = { _, context in
            try context.parameters.require("cache")
        }
        group.get("nix-cache-info") { request, context in try await cacheInfo(name(request, context), request, context)
        }
        group.get(":file") { request, context in
            try await narInfo(name(request, context), request, context, includeBody: true)
        }
        group.head(":file") { request, context in
            try await narInfo(name(request, context), request, context, includeBody: false)
        }
        group.put(":file") { request, context in try await putNarInfo(name(request, context), request, context) }
        group.get("nar/:file") { request, context in
            try await nar(name(request, context), request, context, includeBody: true)
        }
        group.head("nar/:file") { request, context in
            try await nar(name(request, context), request, context, includeBody: false)
        }
        group.put("nar/:file") { request, context in try await putNar(name(request, context), request, context) }
    }

    /// The same cache, read-only, at the root of `<cache>.<host>` (the Host header names it).
    func registerHostRouted(on router: Router<CapstanRequestContext>, cacheHost: CacheHost) {
        let name: @Sendable (Request, CapstanRequestContext) throws -> String = { request, context in
            let host = request.head.authority ?? ""
            guard let name = cacheHost.cacheName(fromHostHeader: host) else {
                throw ServiceError.notFound("no such file: \(request.uri.path) (host \(host) names no cache)")
            }
            return name
        }
        router.get("nix-cache-info") { request, context in try await cacheInfo(name(request, context), request, context)
        }
        router.get(":file") { request, context in
            try await narInfo(name(request, context), request, context, includeBody: true)
        }
        router.head(":file") { request, context in
            try await narInfo(name(request, context), request, context, includeBody: false)
        }
        router.get("nar/:file") { request, context in
            try await nar(name(request, context), request, context, includeBody: true)
        }
        router.head("nar/:file") { request, context in
            try await nar(name(request, context), request, context, includeBody: false)
        }
    }

    private func cacheInfo(_ name: String, _ request: Request, _ context: CapstanRequestContext) async throws
        -> Response
    {
        let cache = try await caches.readableCache(named: name, by: context.identity)
        let text = "StoreDir: \(CacheService.storeDir)\nWantMassQuery: 1\nPriority: \(cache.priority)\n"
        return Response(
            status: .ok, headers: [.contentType: "text/x-nix-cache-info"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private func narInfo(_ name: String, _ request: Request, _ context: CapstanRequestContext, includeBody: Bool)
        async throws
        -> Response
    {
        let file = try context.parameters.require("file")
        guard file.hasSuffix(".narinfo") else { throw ServiceError.notFound("no such file: \(file)") }
        let cache = try await caches.readableCache(named: name, by: context.identity)
        guard let buffer = try await caches.narInfoText(in: cache, hashPart: String(file.dropLast(8))) else {
            return Response(
                status: .notFound, headers: [.contentType: "text/plain"],
                body: .init(byteBuffer: ByteBuffer(string: "404")))
        }
        var headers: HTTPFields = [.contentType: "text/x-nix-narinfo"]
        headers[.contentLength] = String(buffer.readableBytes)
        if includeBody { ServerMetrics.bytesServed(kind: "narinfo", buffer.readableBytes) }
        return Response(status: .ok, headers: headers, body: includeBody ? .init(byteBuffer: buffer) : .init())
    }

    private func nar(_ name: String, _ request: Request, _ context: CapstanRequestContext, includeBody: Bool)
        async throws -> Response
    {
        let file = try context.parameters.require("file")
        let cache = try await caches.readableCache(named: name, by: context.identity)
        guard let nar = try await caches.nar(in: cache, fileName: file) else {
            throw ServiceError.notFound("nar/\(file) is not in cache '\(cache.name)'")
        }
        if includeBody, let url = caches.redirectURL(of: nar) {
            return Response(status: .temporaryRedirect, headers: [.location: url, .cacheControl: "no-store"])
        }
        let size = Int(nar.size)
        var headers: HTTPFields = [.contentType: "application/x-nix-nar", .acceptRanges: "bytes"]
        var range = 0...(size - 1)
        var status = HTTPResponse.Status.ok
        if let rangeHeader = request.headers[.range] {
            guard let requested = Self.parseRange(rangeHeader, size: size) else {
                headers[.contentRange] = "bytes */\(size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
            range = requested
            status = .partialContent
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
        }
        headers[.contentLength] = String(size == 0 ? 0 : range.count)
        guard includeBody, size > 0 else { return Response(status: status, headers: headers) }
        ServerMetrics.bytesServed(kind: "nar", range.count)
        switch try await caches.content(of: nar, range: Int64(range.lowerBound)..<Int64(range.upperBound + 1)) {
        case .file(let path):
            // Removed meanwhile (garbage collection): a 404 rather than a connection cut after the headers.
            guard access(path, R_OK) == 0 else {
                throw ServiceError.notFound("nar/\(file) is gone from cache '\(cache.name)'")
            }
            let copied = PacedBody.file(path, range: range, chunkLength: 128 << 10, on: context.eventLoop)
            return Response(
                status: status, headers: headers,
                body: FileRegionBody.file(path, range: range, channel: context.channel, fallback: copied))
        case .stream(let bytes):
            return Response(
                status: status, headers: headers,
                body: PacedBody.stream(bytes, contentLength: range.count, on: context.eventLoop))
        }
    }

    /// `bytes=a-b`, `bytes=a-` and `bytes=-n`, a single range (what download tools send).
    static func parseRange(_ header: String, size: Int) -> ClosedRange<Int>? {
        guard header.hasPrefix("bytes="), size > 0 else { return nil }
        let spec = header.dropFirst(6)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let start = spec[..<dash].trimmingCharacters(in: .whitespaces)
        let end = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        if start.isEmpty {
            guard let suffix = Int(end), suffix > 0 else { return nil }
            return max(0, size - suffix)...(size - 1)
        }
        guard let lower = Int(start), lower < size else { return nil }
        if end.isEmpty { return lower...(size - 1) }
        guard let upper = Int(end), upper >= lower else { return nil }
        return lower...min(upper, size - 1)
    }

    private func putNar(_ name: String, _ request: Request, _ context: CapstanRequestContext) async throws -> Response {
        let file = try context.parameters.require("file")
        let cache = try await caches.writableCache(named: name, by: context.identity)
        try await caches.stageNar(
            in: cache, fileName: file, expectedSize: request.headers[.contentLength].flatMap { UInt64($0) },
            body: request.body)
        return Response(status: .ok)
    }

    private func putNarInfo(_ name: String, _ request: Request, _ context: CapstanRequestContext) async throws
        -> Response
    {
        let file = try context.parameters.require("file")
        let cache = try await caches.writableCache(named: name, by: context.identity)
        guard file.hasSuffix(".narinfo") else {
            throw ServiceError.badRequest("uploads of '\(file)' are not supported; only NARs and narinfo files")
        }
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        try await caches.putNarInfo(in: cache, hashPart: String(file.dropLast(8)), text: String(buffer: body))
        return Response(status: .ok)
    }
}
