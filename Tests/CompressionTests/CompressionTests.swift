import Compression
import TestSupport
import Testing

/// Every compression test runs one at a time: the bounded-memory test measures this process's
/// peak resident memory, which tests running alongside would inflate.
@Suite(.serialized) enum CompressionTests {}

/// Feeds `input` to `codec` in chunks of pseudo-random sizes (1 byte to `maxChunk`) and finishes it.
func stream(_ input: [UInt8], through codec: any StreamCodec, maxChunk: Int = 70_000, seed: UInt64 = 1) throws
    -> [UInt8]
{
    var sizes = PseudoRandomBytes(seed: seed)
    var output: [UInt8] = []
    let append: (UnsafeRawBufferPointer) -> Void = { output.append(contentsOf: $0) }
    try input.withUnsafeBytes { bytes in
        var offset = 0
        while offset < bytes.count {
            let size = min(bytes.count - offset, Int(sizes.next() % UInt64(maxChunk)) + 1)
            try codec.process(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + size]), into: append)
            offset += size
        }
    }
    try codec.finish(into: append)
    return output
}

/// Runs `body`, returning the `CompressionError` it threw (failing the test if it threw none).
func compressionError(_ body: () throws -> Void) -> CompressionError? {
    do {
        try body()
        Issue.record("expected a CompressionError, nothing was thrown")
    } catch let error as CompressionError {
        return error
    } catch {
        Issue.record("expected a CompressionError, got \(error)")
    }
    return nil
}
