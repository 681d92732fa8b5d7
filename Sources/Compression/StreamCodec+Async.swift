/// Async feeding: the sink is awaited for every piece of output, so a slow consumer (a network
/// writer) slows the codec down instead of letting output pile up in memory.
extension StreamCodec {
    /// Feeds one chunk (an array, `ByteBuffer.readableBytesView`, …), awaiting `sink` per piece of output.
    ///
    /// The buffer passed to `sink` is valid only until `sink` returns.
    nonisolated(nonsending) public func process<Chunk: Collection<UInt8>>(
        _ chunk: Chunk, into sink: nonisolated(nonsending) (UnsafeRawBufferPointer) async throws -> Void
    ) async throws {
        guard chunk.withContiguousStorageIfAvailable({ _ in true }) == true else {
            // Stepping re-enters the chunk's storage on every call, so it must be contiguous.
            return try await process(Array(chunk), into: sink)
        }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: preferredOutputSize, alignment: 16)
        defer { scratch.deallocate() }
        var offset = 0
        var stalled = 0
        while true {
            let step =
                try chunk.withContiguousStorageIfAvailable { storage in
                    try self.step(
                        UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: storage[offset...])), into: scratch,
                        finishing: false)
                } ?? CodecStep(consumed: 0, produced: 0, isFinished: false)
            offset += step.consumed
            if step.produced > 0 { try await sink(UnsafeRawBufferPointer(rebasing: scratch[..<step.produced])) }
            let outputFull = step.produced == scratch.count
            if offset == chunk.count && !outputFull { return }
            stalled = step.consumed == 0 && step.produced == 0 ? stalled + 1 : 0
            try checkProgress(stalled)
        }
    }

    /// Ends the stream, awaiting `sink` for each piece of the remaining output.
    nonisolated(nonsending) public func finish(
        into sink: nonisolated(nonsending) (UnsafeRawBufferPointer) async throws -> Void
    ) async throws {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: preferredOutputSize, alignment: 16)
        defer { scratch.deallocate() }
        var stalled = 0
        while true {
            let step = try step(UnsafeRawBufferPointer(start: nil, count: 0), into: scratch, finishing: true)
            if step.produced > 0 { try await sink(UnsafeRawBufferPointer(rebasing: scratch[..<step.produced])) }
            if step.isFinished { return }
            stalled = step.produced == 0 ? stalled + 1 : 0
            try checkProgress(stalled)
        }
    }

    /// Runs every chunk of `chunks` through the codec, then finishes it.
    nonisolated(nonsending) public func process<Chunks: AsyncSequence>(
        chunks: Chunks, into sink: nonisolated(nonsending) (UnsafeRawBufferPointer) async throws -> Void
    ) async throws where Chunks.Element: Collection<UInt8> {
        for try await chunk in chunks {
            try await process(chunk, into: sink)
        }
        try await finish(into: sink)
    }
}
