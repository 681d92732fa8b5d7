/// Nix's base-32 encoding ("nix32"): its own alphabet (no e, o, u, t), emitted from the most
/// significant 5-bit group down, with bits taken least-significant-first across the bytes.
public enum Nix32 {
    public static let alphabet: [UInt8] = Array("0123456789abcdfghijklmnpqrsvwxyz".utf8)

    private static let decodeTable: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (index, char) in alphabet.enumerated() { table[Int(char)] = Int8(index) }
        return table
    }()

    /// Number of characters used to encode `byteCount` bytes.
    public static func encodedLength(_ byteCount: Int) -> Int {
        byteCount == 0 ? 0 : (byteCount * 8 - 1) / 5 + 1
    }

    public static func encode<Bytes: RandomAccessCollection>(_ bytes: Bytes) -> String
    where Bytes.Element == UInt8, Bytes.Index == Int {
        let length = encodedLength(bytes.count)
        let base = bytes.startIndex
        return String(unsafeUninitializedCapacity: length) { out in
            var position = 0
            for n in stride(from: length - 1, through: 0, by: -1) {
                let bit = n * 5
                let i = bit / 8
                let j = bit % 8
                var c = Int(bytes[base + i]) >> j
                if i + 1 < bytes.count { c |= Int(bytes[base + i + 1]) << (8 - j) }
                out[position] = alphabet[c & 0x1f]
                position += 1
            }
            return length
        }
    }

    /// Decodes a nix32 string into `byteCount` bytes; nil when a character is not in the
    /// alphabet, the length is wrong, or high bits beyond `byteCount` are set.
    public static func decode(_ string: Substring, byteCount: Int) -> [UInt8]? {
        let chars = Array(string.utf8)
        guard chars.count == encodedLength(byteCount) else { return nil }
        var bytes = [UInt8](repeating: 0, count: byteCount)
        for n in 0..<chars.count {
            let digit = decodeTable[Int(chars[chars.count - n - 1])]
            guard digit >= 0 else { return nil }
            let bit = n * 5
            let i = bit / 8
            let j = bit % 8
            bytes[i] |= UInt8(truncatingIfNeeded: Int(digit) << j)
            let carry = Int(digit) >> (8 - j)
            if i + 1 < byteCount {
                bytes[i + 1] |= UInt8(truncatingIfNeeded: carry)
            } else if carry != 0 {
                return nil
            }
        }
        return bytes
    }

    public static func decode(_ string: String, byteCount: Int) -> [UInt8]? {
        decode(Substring(string), byteCount: byteCount)
    }

    public static func isValid(_ string: Substring) -> Bool {
        string.utf8.allSatisfy { decodeTable[Int($0)] >= 0 }
    }
}
