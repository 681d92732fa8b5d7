/// The cache and hash part a narinfo URL names, in the shapes `BinaryCacheRoutes` serves:
/// `/cache/<cache>/<hash>.narinfo`, and `/<hash>.narinfo` on a cache's own host (no cache named
/// here: the Host header names it). Only plain segments qualify (letters, digits, `.`, `-`, `_`),
/// so that no percent-encoding, query or empty segment is read any other way than the router reads it.
struct NarInfoLocation: Equatable {
    var cache: String?
    var hashPart: String

    init?(path: String) {
        let bytes = path.utf8
        guard bytes.count <= 512, bytes.first == UInt8(ascii: "/") else { return nil }
        let segments = bytes.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard segments.allSatisfy(Self.isPlain) else { return nil }
        let file: Substring.UTF8View
        switch segments.count {
        case 1:
            cache = nil
            file = segments[0]
        case 3 where segments[0].elementsEqual("cache".utf8):
            cache = String(decoding: segments[1], as: UTF8.self)
            file = segments[2]
        default:
            return nil
        }
        let suffix = ".narinfo".utf8
        guard file.count > suffix.count, file.suffix(suffix.count).elementsEqual(suffix) else { return nil }
        hashPart = String(decoding: file.dropLast(suffix.count), as: UTF8.self)
    }

    private static func isPlain(_ segment: some Collection<UInt8>) -> Bool {
        !segment.isEmpty
            && segment.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                    true
                default: false
                }
            }
    }
}
