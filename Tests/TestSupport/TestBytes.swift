import Foundation

/// Deterministic test data that compresses somewhat, like real NARs: runs of random bytes,
/// runs of low-entropy "text", and runs of zeros, in a pseudo-random mix.
public struct PseudoRandomBytes: Sendable {
    private var state: UInt64
    private var mode: UInt64 = 0
    private var wordsLeftInRun = 0

    public init(seed: UInt64) { state = seed }

    /// SplitMix64: fast and good enough for test data.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset < buffer.count {
            if wordsLeftInRun == 0 {
                let pick = next()
                mode = pick & 3
                wordsLeftInRun = Int((pick >> 8) % 512) + 8
            }
            wordsLeftInRun -= 1
            let random = next()
            let word: UInt64 =
                switch mode {
                case 0: random
                case 1: 0
                default: (random & 0x0707_0707_0707_0707) | 0x6161_6161_6161_6161
                }
            let count = min(8, buffer.count - offset)
            if count == 8 {
                buffer.storeBytes(of: word.littleEndian, toByteOffset: offset, as: UInt64.self)
            } else {
                withUnsafeBytes(of: word.littleEndian) { bytes in
                    UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + count])
                        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[..<count]))
                }
            }
            offset += count
        }
    }

    public mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { fill($0) }
        return result
    }
}

/// Resident memory of this process, from /proc/self/status (Linux).
public enum ProcessMemory {
    /// `VmRSS` in bytes, or nil where /proc is missing.
    public static var resident: Int? { field("VmRSS") }

    /// `VmHWM` (peak resident) in bytes.
    public static var peakResident: Int? { field("VmHWM") }

    /// Resets `VmHWM` to the current resident size; false where the kernel refuses.
    @discardableResult
    public static func resetPeak() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        return (try? handle.write(contentsOf: Data("5".utf8))) != nil
    }

    private static func field(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            // "VmRSS:\t  123456 kB"
            let number = line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first
            return number.flatMap { Int($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
