import Compression
import NIOCore

/// Compresses a NAR straight into the ByteBuffers an upload sends: the encoder writes into the
/// buffer's free space, so compressed bytes are never copied on the client.
struct CompressedChunker {
    /// A buffer is sent once it holds this much.
    static let sendSize = 512 << 10

    private let encoder: ZstdEncoder
    private let send: (ByteBuffer) throws -> Void
    private var pending: ByteBuffer

    init(encoder: ZstdEncoder, send: @escaping (ByteBuffer) throws -> Void) {
        self.encoder = encoder
        self.send = send
        pending = Self.freshBuffer()
    }

    private static func freshBuffer() -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(Self.sendSize + ZstdEncoder.outputHeadroom)
        return buffer
    }

    /// Compresses all of `input`, sending each buffer that fills up.
    mutating func process(_ input: UnsafeRawBufferPointer) throws {
        try run(input, finishing: false)
    }

    /// Ends the frame and sends what is left.
    mutating func finish() throws {
        try run(UnsafeRawBufferPointer(start: nil, count: 0), finishing: true)
        if pending.readableBytes > 0 { try send(pending) }
        pending = ByteBuffer()
    }

    private mutating func run(_ input: UnsafeRawBufferPointer, finishing: Bool) throws {
        var rest = input
        var idle = 0
        while true {
            var step = CodecStep(consumed: 0, produced: 0, isFinished: false)
            var room = 0
            let encoder = encoder
            let source = rest
            try pending.writeWithUnsafeMutableBytes(minimumWritableBytes: ZstdEncoder.outputHeadroom) { output in
                room = output.count
                step = try encoder.step(source, into: output, finishing: finishing)
                return step.produced
            }
            rest = UnsafeRawBufferPointer(rebasing: rest[step.consumed...])
            if pending.readableBytes >= Self.sendSize {
                try send(pending)
                pending = Self.freshBuffer()
            }
            // Done when all input is in and the encoder did not stop for want of room (it may hold more).
            if finishing ? step.isFinished : (rest.isEmpty && step.produced < room) { return }
            idle = step.consumed == 0 && step.produced == 0 ? idle + 1 : 0
            if idle > 2 {
                throw CompressionError(
                    codec: "zstd", kind: .library, message: "the library made no progress on \(idle) calls in a row")
            }
        }
    }
}

extension ZstdEncoder {
    /// Free space offered to each compression step: the library's recommended output size.
    static let outputHeadroom = 128 << 10
}
