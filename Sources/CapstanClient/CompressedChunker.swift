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
        try encoder.pump(input, finishing: finishing) { fill in
            try pending.writeWithUnsafeMutableBytes(minimumWritableBytes: ZstdEncoder.outputHeadroom) { try fill($0) }
            if pending.readableBytes >= Self.sendSize {
                try send(pending)
                pending = Self.freshBuffer()
            }
        }
    }
}

extension ZstdEncoder {
    /// Free space offered to each compression step: the library's recommended output size.
    static let outputHeadroom = 128 << 10
}
