import NIOCore
import NIOHTTP1

/// Sends a response body straight from a file (`FileRegion`, sendfile): the bytes never pass through
/// user space, and the socket's own back-pressure paces them. It sits below Hummingbird's codec,
/// where bodies are `IOData`; a route hands it a region through `send(_:)` — a call on the
/// connection's pipeline, not anything in the request or response, so no client can ask for a file.
final class FileRegionSender: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private var context: ChannelHandlerContext?
    /// Between a final response head and its end: where a region may go.
    private var inBody = false
    /// A region handed over before its response's head came down the pipeline.
    private var waiting: (region: FileRegion, promise: EventLoopPromise<Void>)?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        if let waiting {
            self.waiting = nil
            waiting.promise.fail(ChannelError.ioOnClosedChannel)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head):
            context.write(data, promise: promise)
            // 1xx heads are followed by the real one; only a final head opens a body.
            guard head.status.code >= 200 else { return }
            inBody = true
            if let waiting {
                self.waiting = nil
                context.writeAndFlush(wrapOutboundOut(.body(.fileRegion(waiting.region))), promise: waiting.promise)
            }
        case .body:
            context.write(data, promise: promise)
        case .end:
            inBody = false
            context.write(data, promise: promise)
        }
    }

    /// Writes `region` as the body of the response being sent, after its head, and completes
    /// `promise` once it is written; the caller then ends the response. Takes the region's file
    /// handle and closes it once the write succeeded or failed (a client gone mid-download
    /// included). On the event loop.
    func send(_ region: FileRegion, promise: EventLoopPromise<Void>) {
        let handle = region.fileHandle
        promise.futureResult.whenComplete { _ in try? handle.close() }
        guard let context, waiting == nil else {
            promise.fail(ChannelError.ioOnClosedChannel)
            return
        }
        if inBody {
            context.writeAndFlush(wrapOutboundOut(.body(.fileRegion(region))), promise: promise)
        } else {
            waiting = (region, promise)
        }
    }
}
