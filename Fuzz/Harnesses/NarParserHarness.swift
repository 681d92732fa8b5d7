import NixCore

/// A NAR is accepted or refused the same way, at the same offset, however its bytes arrive: fed
/// whole and fed in chunks of 1 to 13 bytes (chosen by the last byte); an accepted one is exactly
/// as long as its NarSize.
enum NarParserHarness {
    struct Outcome: Equatable {
        var directories = 0
        var regularFiles = 0
        var symlinks = 0
        var contentBytes: UInt64 = 0
        var narSize: UInt64 = 0
        var error: NarParseError?
    }

    static func run(_ bytes: UnsafeRawBufferPointer) throws -> FuzzVerdict {
        let whole = try parse(bytes, chunkSize: nil)
        let chunkSize = 1 + Int(bytes.last ?? 0) % 13
        let chunked = try parse(bytes, chunkSize: chunkSize)
        guard whole == chunked else {
            throw FuzzFinding("NAR fed whole: \(whole); fed in chunks of \(chunkSize): \(chunked)")
        }
        if let error = whole.error { return .refused(error.description) }
        guard whole.narSize == UInt64(bytes.count) else {
            throw FuzzFinding("NarSize \(whole.narSize) of an accepted NAR of \(bytes.count) bytes")
        }
        return .accepted
    }

    /// Parses with `NarValidator`, `chunkSize` bytes at a time (all at once when nil).
    static func parse(_ bytes: UnsafeRawBufferPointer, chunkSize: Int?) throws -> Outcome {
        var parser = NarParser(visitor: NarValidator())
        do {
            var start = 0
            repeat {
                let end = min(bytes.count, start + (chunkSize ?? bytes.count))
                try parser.feed(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                start = end
            } while start < bytes.count
            try parser.finish()
        } catch let error as NarParseError {
            return Outcome(error: error)
        } catch {
            throw FuzzFinding("NarParser threw something other than a NarParseError: \(error)")
        }
        let found = parser.visitor
        return Outcome(
            directories: found.directories, regularFiles: found.regularFiles, symlinks: found.symlinks,
            contentBytes: found.contentBytes, narSize: parser.offset)
    }
}
