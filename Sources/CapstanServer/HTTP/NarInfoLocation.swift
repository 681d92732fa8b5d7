/// The cache and hash part a narinfo URL names, in the shapes `BinaryCacheRoutes` serves:
/// `/cache/<cache>/<hash>.narinfo`, and `/<hash>.narinfo` on a cache's own host (no cache named
/// here: the Host header names it). Only plain segments qualify (letters, digits, `.`, `-`, `_`),
/// so that no percent-encoding, query or empty segment is read any other way than the router reads it.
struct NarInfoLocation: Equatable {
    var cache: String?
    var hashPart: String

    init?(path: String) {
        // One pass over the bytes, no arrays: this runs for every request the fast path sees.
        var path = path
        guard
            let found = path.withUTF8({ bytes -> (cache: String?, hashPart: String)? in
                guard let (cache, file) = Self.segments(of: bytes) else { return nil }
                let suffix = ".narinfo".utf8
                guard file.count > suffix.count, bytes[file.suffix(suffix.count)].elementsEqual(suffix) else {
                    return nil
                }
                let text = { (range: Range<Int>) in
                    String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                }
                return (cache.map(text), text(file.dropLast(suffix.count)))
            })
        else { return nil }
        cache = found.cache
        hashPart = found.hashPart
    }

    /// The cache segment (of `/cache/<cache>/<file>`) and the file segment (also of `/<file>`), each
    /// non-empty and plain; nil for any other shape.
    private static func segments(of bytes: UnsafeBufferPointer<UInt8>) -> (cache: Range<Int>?, file: Range<Int>)? {
        guard bytes.count <= 512, bytes.first == UInt8(ascii: "/") else { return nil }
        var slashCount = 0
        var first = 0
        var second = 0
        for index in 1..<bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "/") {
                slashCount += 1
                switch slashCount {
                case 1: first = index
                case 2: second = index
                default: return nil
                }
            } else if !isPlain(byte) {
                return nil
            }
        }
        switch slashCount {
        case 0:
            return bytes.count > 1 ? (nil, 1..<bytes.count) : nil
        case 2:
            guard bytes[1..<first].elementsEqual("cache".utf8), second > first + 1, second + 1 < bytes.count
            else { return nil }
            return (first + 1..<second, second + 1..<bytes.count)
        default:
            return nil
        }
    }

    private static func isPlain(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}
