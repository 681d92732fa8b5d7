import NIOCore

extension NarInfoAnswers.Answer {
    /// The whole HTTP/1.1 response in one buffer, as Hummingbird's encoder would write the route's:
    /// status line, `Content-Type`, `Content-Length`, `Date`, `Server`, then the text unless HEAD.
    /// One buffer, one write: no header fields are built or encoded per request.
    func encoded(date: String, serverName: String?, allocator: ByteBufferAllocator) -> ByteBuffer {
        let length = text.readableBytes
        var buffer = allocator.buffer(capacity: 160 + (includeBody ? length : 0))
        buffer.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: text/x-nix-narinfo\r\nContent-Length: ")
        buffer.writeString(String(length))
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(date)
        if let serverName {
            buffer.writeStaticString("\r\nServer: ")
            buffer.writeString(serverName)
        }
        buffer.writeStaticString("\r\n\r\n")
        if includeBody { buffer.writeImmutableBuffer(text) }
        return buffer
    }
}
