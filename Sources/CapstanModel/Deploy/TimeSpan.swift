import Foundation

/// A duration as people write it in deploy.json and on the command line: `500ms`, `10s`, `5m`,
/// `1h`, `7d`, `1m30s`, or a plain number of seconds. Encoded as that text.
public struct TimeSpan: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public var duration: Duration

    public init(_ duration: Duration) { self.duration = duration }

    public static func seconds(_ seconds: Int64) -> TimeSpan { TimeSpan(.seconds(seconds)) }

    /// Nil when `text` is no such duration (a negative one, or one beyond 64 bits of milliseconds, included).
    public init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { return nil }
        if let seconds = Double(text) {
            guard seconds >= 0, let milliseconds = Int64(exactly: (seconds * 1000).rounded()) else { return nil }
            duration = .milliseconds(milliseconds)
            return
        }
        let units: [String: Int64] = ["ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        var milliseconds: Double = 0
        var rest = Substring(text)
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            rest = rest.dropFirst(number.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            guard let value = Double(number), let scale = units[String(unit)] else { return nil }
            milliseconds += value * Double(scale)
        }
        guard let whole = Int64(exactly: milliseconds.rounded()) else { return nil }
        duration = .milliseconds(whole)
    }

    public var seconds: Double {
        let components = duration.components
        return Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// The shortest of `1h30m`, `10s`, `1.5s`, `500ms`.
    public var description: String {
        let milliseconds = Int64((seconds * 1000).rounded())
        guard milliseconds % 1000 == 0 else {
            return milliseconds < 1000 ? "\(milliseconds)ms" : "\(Double(milliseconds) / 1000)s"
        }
        var remaining = milliseconds / 1000
        guard remaining > 0 else { return "0s" }
        var text = ""
        for (unit, size) in [("h", Int64(3600)), ("m", 60), ("s", 1)] where remaining >= size {
            text += "\(remaining / size)\(unit)"
            remaining %= size
        }
        return text
    }

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.duration < rhs.duration }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let seconds = try? container.decode(Double.self) {
            guard let span = TimeSpan(parsing: "\(seconds)") else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "\(seconds) is no duration")
            }
            self = span
            return
        }
        let text = try container.decode(String.self)
        guard let span = TimeSpan(parsing: text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\(text.debugDescription) is no duration such as 10s, 5m or 1h")
        }
        self = span
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
