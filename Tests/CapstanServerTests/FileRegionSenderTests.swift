import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import TestSupport
import Testing

@testable import CapstanServer

/// The order `FileRegionSender` writes in, in a pipeline of its own with the real HTTP/1 encoder:
/// a region goes after its response's final head, whenever it was handed over, and its file is
/// closed however the write ends.
@Suite struct FileRegionSenderTests {
    let temp: TemporaryDirectory
    let channel = EmbeddedChannel()
    let sender = FileRegionSender()

    init() throws {
        temp = try TemporaryDirectory("capstan-file-region")
        try channel.pipeline.syncOperations.addHandlers([HTTPResponseEncoder(), sender])
    }

    /// A region over a fresh file of `length` bytes, and its handle.
    func region(_ length: Int) throws -> (FileRegion, NIOFileHandle) {
        let path = temp.sub(UUID().uuidString)
        try Data(repeating: 7, count: length).write(to: URL(fileURLWithPath: path))
        let handle = try NIOFileHandle(_deprecatedPath: path)
        return (FileRegion(fileHandle: handle, readerIndex: 0, endIndex: length), handle)
    }

    func head(_ status: HTTPResponseStatus) -> HTTPServerResponsePart {
        .head(HTTPResponseHead(version: .http1_1, status: status, headers: ["content-length": "10"]))
    }

    /// What the encoder wrote: `head`, `region <bytes>` or `bytes <count>` per write.
    func written() throws -> [String] {
        var parts: [String] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            switch data {
            case .byteBuffer(let buffer):
                let text = String(buffer: buffer)
                parts.append(
                    text.hasPrefix("HTTP/1.1 ") ? "head \(text.split(separator: " ")[1])" : "bytes \(text.count)")
            case .fileRegion(let region):
                parts.append("region \(region.readableBytes)")
            }
        }
        return parts.filter { $0 != "bytes 0" }
    }

    @Test func aRegionHandedOverBeforeItsHeadWaitsForIt() throws {
        let (region, handle) = try region(10)
        let sent = channel.eventLoop.makePromise(of: Void.self)
        sender.send(region, promise: sent)
        #expect(try written() == [])
        try channel.writeOutbound(head(.continue))
        #expect(try written() == ["head 100"], "an informational head opens no body")
        try channel.writeOutbound(head(.ok))
        #expect(try written() == ["head 200", "region 10"])
        try sent.futureResult.wait()
        #expect(!handle.isOpen)
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        _ = try channel.finish()
    }

    @Test func aRegionHandedOverAfterItsHeadGoesAtOnce() throws {
        try channel.writeOutbound(head(.partialContent))
        let (region, handle) = try region(10)
        let sent = channel.eventLoop.makePromise(of: Void.self)
        sender.send(region, promise: sent)
        try sent.futureResult.wait()
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(try written() == ["head 206", "region 10"])
        #expect(!handle.isOpen)
        _ = try channel.finish()
    }

    @Test func aConnectionClosedBeforeTheHeadClosesTheWaitingFile() throws {
        let (region, handle) = try region(10)
        let sent = channel.eventLoop.makePromise(of: Void.self)
        sender.send(region, promise: sent)
        _ = try channel.finish()
        #expect(throws: (any Error).self) { try sent.futureResult.wait() }
        #expect(!handle.isOpen)
    }
}
