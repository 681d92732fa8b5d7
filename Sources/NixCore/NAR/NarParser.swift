/// A push parser for NAR: feed it chunks of any size as they arrive (from a file, stdin or a network
/// stream) and it reports entries to its visitor, validating as strictly as Nix does and more.
///
/// Only the canonical form `nix-store --dump` writes is accepted, so a NAR that parses has exactly one
/// encoding and its hash identifies its contents. File contents pass through without being copied;
/// only names and symlink targets are buffered, up to `Limits`.
public struct NarParser<Visitor: NarVisitor> {
    public typealias Limits = NarLimits

    /// What the next complete token must be.
    private enum Expectation {
        case magic, nodeOpen, typeKeyword, nodeType
        case regularAttribute, executableValue, contentsKeyword, contentsLength
        case nodeClose, targetKeyword, targetValue
        case directoryItem, entryOpen, nameKeyword, nameValue, nodeKeyword, entryClose
        case end

        var what: String {
            switch self {
            case .magic: "'nix-archive-1'"
            case .nodeOpen, .entryOpen: "'('"
            case .typeKeyword: "'type'"
            case .nodeType: "'regular', 'symlink' or 'directory'"
            case .regularAttribute: "'executable' or 'contents'"
            case .executableValue: "the empty string after 'executable'"
            case .contentsKeyword: "'contents'"
            case .contentsLength: "the length of the file contents"
            case .nodeClose, .entryClose: "')'"
            case .targetKeyword: "'target'"
            case .targetValue: "a symlink target"
            case .directoryItem: "'entry' or ')'"
            case .nameKeyword: "'name'"
            case .nameValue: "an entry name"
            case .nodeKeyword: "'node'"
            case .end: "the end of the archive"
            }
        }
    }

    /// Which part of a token the next bytes belong to.
    private enum Phase { case length, string, contents, padding, done }

    public var visitor: Visitor
    public let limits: Limits
    /// Bytes consumed so far; after `finish()` this is the NarSize.
    public private(set) var offset: UInt64 = 0

    private var phase = Phase.length
    private var expectation = Expectation.magic
    /// Bytes left in the current string, contents or padding.
    private var remaining: UInt64 = 0
    private var lengthValue: UInt64 = 0
    private var lengthBytesRead = 0
    private var token: [UInt8] = []
    private var tokenStart: UInt64 = 0
    private var paddingEndsContents = false
    private var path = NarPath()
    /// The last entry name of each open directory, innermost last.
    private var previousNames: [[UInt8]] = []
    private var executable = false
    private var failure: NarParseError?

    public init(visitor: Visitor, limits: Limits = .default) {
        self.visitor = visitor
        self.limits = limits
        token.reserveCapacity(256)
    }

    /// True once the root object is complete; anything fed after that is rejected.
    public var isComplete: Bool { phase == .done }

    public mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        do {
            try consume(bytes)
        } catch let error as NarParseError {
            failure = error
            throw error
        }
    }

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) throws where Bytes.Element == UInt8 {
        let handled: Void? = try bytes.withContiguousStorageIfAvailable { try feed(UnsafeRawBufferPointer($0)) }
        if handled == nil { try Array(bytes).withUnsafeBytes { try feed($0) } }
    }

    /// Declares the end of input; throws if the archive is incomplete.
    public mutating func finish() throws {
        if let failure { throw failure }
        guard phase == .done else {
            let what: String
            switch phase {
            case .contents: what = "\(remaining) more bytes of file contents"
            case .padding: what = "padding"
            case .string: what = "\(remaining) more bytes of \(expectation.what)"
            default: what = expectation.what
            }
            let error = NarParseError(.truncated(expected: what), offset: offset, path: path)
            failure = error
            throw error
        }
    }

    private func error(_ problem: NarParseError.Problem, at position: UInt64? = nil) -> NarParseError {
        NarParseError(problem, offset: position ?? tokenStart, path: path)
    }

    private mutating func consume(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress else { return }
        let count = bytes.count
        var index = 0
        while index < count {
            let available = count - index
            switch phase {
            case .length:
                if lengthBytesRead == 0 { tokenStart = offset }
                if lengthBytesRead == 0 && available >= 8 {
                    lengthValue = UInt64(littleEndian: (base + index).loadUnaligned(as: UInt64.self))
                    lengthBytesRead = 8
                    index += 8
                    offset += 8
                } else {
                    let n = min(8 - lengthBytesRead, available)
                    for i in 0..<n {
                        lengthValue |=
                            UInt64(base.load(fromByteOffset: index + i, as: UInt8.self)) << (8 * (lengthBytesRead + i))
                    }
                    lengthBytesRead += n
                    index += n
                    offset += UInt64(n)
                }
                if lengthBytesRead == 8 {
                    let length = lengthValue
                    lengthValue = 0
                    lengthBytesRead = 0
                    try lengthRead(length)
                }
            case .string:
                let n = Int(min(remaining, UInt64(available)))
                token.append(contentsOf: UnsafeRawBufferPointer(start: base + index, count: n))
                index += n
                offset += UInt64(n)
                remaining -= UInt64(n)
                if remaining == 0 { try stringRead() }
            case .contents:
                let n = Int(min(remaining, UInt64(available)))
                try visitor.receiveContents(UnsafeRawBufferPointer(start: base + index, count: n))
                index += n
                offset += UInt64(n)
                remaining -= UInt64(n)
                if remaining == 0 { try contentsRead() }
            case .padding:
                let n = Int(min(remaining, UInt64(available)))
                for i in 0..<n where base.load(fromByteOffset: index + i, as: UInt8.self) != 0 {
                    throw error(.nonZeroPadding, at: offset + UInt64(i))
                }
                index += n
                offset += UInt64(n)
                remaining -= UInt64(n)
                if remaining == 0 {
                    phase = .length
                    if paddingEndsContents {
                        try contentsDone()
                    } else {
                        try tokenRead()
                    }
                }
            case .done:
                throw error(.trailingData, at: offset)
            }
        }
    }

    private mutating func lengthRead(_ length: UInt64) throws {
        if expectation == .contentsLength {
            // The contents and up to 7 bytes of padding follow; no real NAR passes 2^64 bytes, and a
            // declared length that would must not reach visitors that add sizes up.
            guard length <= UInt64.max - offset - 7 else { throw error(.contentsTooLong(length: length)) }
            try visitor.createRegularFile(at: path, executable: executable, size: length, contentsOffset: offset)
            remaining = length
            lengthOfContents = length
            if length == 0 { try contentsDone() } else { phase = .contents }
            return
        }
        let limit: Int
        switch expectation {
        case .nameValue: limit = limits.maxNameLength
        case .targetValue: limit = limits.maxTargetLength
        default: limit = NarFormat.longestKeyword
        }
        guard length <= UInt64(limit) else {
            switch expectation {
            case .nameValue: throw error(.tokenTooLong(what: "entry name", length: length, limit: limit))
            case .targetValue: throw error(.tokenTooLong(what: "symlink target", length: length, limit: limit))
            case .magic: throw error(.badMagic)
            default:
                throw error(.unexpectedToken(expected: expectation.what, found: "of \(length) bytes"))
            }
        }
        token.removeAll(keepingCapacity: true)
        if length == 0 {
            try tokenRead()
        } else {
            remaining = length
            phase = .string
        }
    }

    private mutating func stringRead() throws {
        let padding = NarFormat.padding(for: UInt64(token.count))
        if padding == 0 {
            phase = .length
            try tokenRead()
        } else {
            remaining = UInt64(padding)
            paddingEndsContents = false
            phase = .padding
        }
    }

    private mutating func contentsRead() throws {
        let padding = NarFormat.padding(for: lengthOfContents)
        if padding == 0 {
            try contentsDone()
        } else {
            remaining = UInt64(padding)
            paddingEndsContents = true
            phase = .padding
        }
    }

    /// Contents length of the file being read, kept for its padding.
    private var lengthOfContents: UInt64 = 0

    private mutating func contentsDone() throws {
        phase = .length
        try visitor.closeRegularFile()
        expectation = .nodeClose
    }

    private func found() -> String {
        if token.count <= 32, let text = String(validating: token, as: UTF8.self),
            !text.utf8.contains(where: { $0 < 0x20 })
        {
            return "'\(text)'"
        }
        return "of \(token.count) bytes"
    }

    private func expect(_ keyword: [UInt8]) throws {
        guard token == keyword else {
            if expectation == .magic { throw error(.badMagic) }
            throw error(.unexpectedToken(expected: expectation.what, found: found()))
        }
    }

    /// Advances the grammar with the complete string token in `token`.
    private mutating func tokenRead() throws {
        switch expectation {
        case .magic:
            try expect(NarFormat.magic)
            expectation = .nodeOpen
        case .nodeOpen:
            try expect(NarFormat.open)
            expectation = .typeKeyword
        case .typeKeyword:
            try expect(NarFormat.type)
            expectation = .nodeType
        case .nodeType:
            if token == NarFormat.regular {
                executable = false
                expectation = .regularAttribute
            } else if token == NarFormat.symlink {
                expectation = .targetKeyword
            } else if token == NarFormat.directory {
                try visitor.createDirectory(at: path)
                previousNames.append([])
                expectation = .directoryItem
            } else {
                throw error(.unexpectedToken(expected: expectation.what, found: found()))
            }
        case .regularAttribute:
            if token == NarFormat.executable {
                expectation = .executableValue
            } else if token == NarFormat.contents {
                startContents()
            } else {
                throw error(.unexpectedToken(expected: expectation.what, found: found()))
            }
        case .executableValue:
            guard token.isEmpty else {
                throw error(.unexpectedToken(expected: expectation.what, found: found()))
            }
            executable = true
            expectation = .contentsKeyword
        case .contentsKeyword:
            try expect(NarFormat.contents)
            startContents()
        case .contentsLength:
            preconditionFailure("a contents length is read as a length, not a string")
        case .nodeClose:
            try expect(NarFormat.close)
            try nodeDone()
        case .targetKeyword:
            try expect(NarFormat.target)
            expectation = .targetValue
        case .targetValue:
            if token.isEmpty { throw error(.invalidSymlinkTarget(reason: "it is empty")) }
            if token.contains(0) { throw error(.invalidSymlinkTarget(reason: "it contains a NUL byte")) }
            try visitor.createSymlink(at: path, target: token)
            expectation = .nodeClose
        case .directoryItem:
            if token == NarFormat.entry {
                expectation = .entryOpen
            } else if token == NarFormat.close {
                try visitor.closeDirectory(at: path)
                previousNames.removeLast()
                try nodeDone()
            } else {
                throw error(.unexpectedToken(expected: expectation.what, found: found()))
            }
        case .entryOpen:
            try expect(NarFormat.open)
            expectation = .nameKeyword
        case .nameKeyword:
            try expect(NarFormat.name)
            expectation = .nameValue
        case .nameValue:
            try enterEntry()
            expectation = .nodeKeyword
        case .nodeKeyword:
            try expect(NarFormat.node)
            expectation = .nodeOpen
        case .entryClose:
            try expect(NarFormat.close)
            path.removeLast()
            expectation = .directoryItem
        case .end:
            preconditionFailure("no token is read after the end")
        }
    }

    /// The contents token's length is read as a raw u64 by `lengthRead`, never buffered as a string.
    private mutating func startContents() {
        expectation = .contentsLength
    }

    private mutating func enterEntry() throws {
        let name = token
        let shown = String(decoding: name, as: UTF8.self)
        if name.isEmpty { throw error(.invalidName(name: shown, reason: "it is empty")) }
        if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] {
            throw error(.invalidName(name: shown, reason: "'.' and '..' cannot be entries"))
        }
        if name.contains(UInt8(ascii: "/")) { throw error(.invalidName(name: shown, reason: "it contains '/'")) }
        if name.contains(0) { throw error(.invalidName(name: shown, reason: "it contains a NUL byte")) }
        let previous = previousNames[previousNames.count - 1]
        if !previous.isEmpty {
            if name == previous { throw error(.duplicateEntry(name: shown)) }
            if !previous.lexicographicallyPrecedes(name) {
                throw error(
                    .unsortedEntries(previous: String(decoding: previous, as: UTF8.self), name: shown))
            }
        }
        guard path.depth < limits.maxDepth else { throw error(.tooDeep(limit: limits.maxDepth)) }
        previousNames[previousNames.count - 1] = name
        path.append(name)
    }

    /// A node's closing `)` was read: the root ends the archive, any other node returns to its directory.
    private mutating func nodeDone() throws {
        if path.isRoot {
            expectation = .end
            phase = .done
        } else {
            expectation = .entryClose
        }
    }
}
