import AsyncHTTPClient
import NIOCore

/// One blob being written to the object store. Up to one part is buffered: a blob that stays
/// smaller is sent whole to its key on commit (one PUT: it appears whole or not at all); a larger
/// one goes part by part to a temporary object as it is written, completed and copied to its key on
/// commit, then the temporary object is deleted. Not thread-safe: one task writes it.
public final class S3BlobWriter: BlobWriter {
    public private(set) var bytesWritten: Int64 = 0
    private let store: S3BlobStore
    private let temporaryKey: String
    private var buffer = ByteBuffer()
    private var upload: MultipartUpload?
    private var closed = false

    init(store: S3BlobStore, temporaryKey: String) {
        self.store = store
        self.temporaryKey = temporaryKey
    }

    public func write(_ bytes: ByteBuffer) async throws {
        guard !closed else { throw BlobStoreError.writerClosed(path: temporaryKey) }
        var bytes = bytes
        bytesWritten += Int64(bytes.readableBytes)
        while bytes.readableBytes > 0 {
            let room = store.partSize - buffer.readableBytes
            var slice = bytes.readSlice(length: min(room, bytes.readableBytes))!
            buffer.writeBuffer(&slice)
            if buffer.readableBytes >= store.partSize { try await sendPart() }
        }
    }

    private func sendPart() async throws {
        if upload == nil { upload = try await MultipartUpload.start(key: temporaryKey, client: store.client) }
        try await upload?.upload(part: buffer)
        buffer = ByteBuffer()
    }

    public func commit(as key: BlobKey) async throws {
        guard !closed else { throw BlobStoreError.writerClosed(path: temporaryKey) }
        let destination = try store.objectKey(key)
        do {
            if let upload {
                if buffer.readableBytes > 0 { try await sendPart() }
                try await upload.complete()
                try await store.copy(from: temporaryKey, to: destination, size: bytesWritten)
                _ = try? await store.client.send(
                    store.client.makeRequest(.DELETE, key: temporaryKey), what: "deleting \(temporaryKey)")
            } else {
                var request = store.client.makeRequest(
                    .PUT, key: destination, headers: ["content-length": String(buffer.readableBytes)])
                request.body = .bytes(buffer)
                _ = try await store.client.send(request, what: "PUT \(destination)")
            }
        } catch {
            await discard()
            throw error
        }
        closed = true
        buffer = ByteBuffer()
    }

    public func discard() async {
        guard !closed else { return }
        closed = true
        buffer = ByteBuffer()
        if let upload {
            await upload.abort()
            // The upload may have completed before a failed copy: its object goes too.
            _ = try? await store.client.send(
                store.client.makeRequest(.DELETE, key: temporaryKey), what: "deleting \(temporaryKey)")
        }
    }
}
