import CapstanModel
import CapstanStorage
import Foundation

/// How much an agent may log: a line's length, lines per message and lines per deployment. What
/// goes past is cut visibly, never silently, and never held in memory.
public struct LogLimits: Sendable, Equatable {
    public var maxLineBytes: Int
    public var maxLinesPerMessage: Int
    public var maxLinesPerDeployment: Int

    public init(maxLineBytes: Int = 16 << 10, maxLinesPerMessage: Int = 1000, maxLinesPerDeployment: Int = 100_000) {
        self.maxLineBytes = maxLineBytes
        self.maxLinesPerMessage = maxLinesPerMessage
        self.maxLinesPerDeployment = maxLinesPerDeployment
    }

    static let truncatedSuffix = " … [line truncated]"

    var cap: LogCap {
        LogCap(
            lines: maxLinesPerDeployment,
            marker:
                "[log truncated: this deployment logged more than \(maxLinesPerDeployment) lines; the rest was dropped]"
        )
    }

    /// The lines of one message as they are stored: at most `maxLinesPerMessage` (a note says how
    /// many were dropped), each at most `maxLineBytes`, each dated within the deployment's lifetime.
    func accept(_ lines: [LogLine], since created: Date, now: Date) -> [LogLine] {
        var accepted = lines.prefix(maxLinesPerMessage).map { line in
            LogLine(time: Self.clamp(line.time, from: created, to: now), line: cut(line.line))
        }
        if lines.count > maxLinesPerMessage {
            accepted.append(
                LogLine(
                    time: now,
                    line: "[log truncated: \(lines.count - maxLinesPerMessage) more lines of one message were dropped]")
            )
        }
        return accepted
    }

    /// A line cut at a character boundary so that it fits, with a visible suffix.
    func cut(_ line: String) -> String {
        guard line.utf8.count > maxLineBytes else { return line }
        var end = line.utf8.index(line.utf8.startIndex, offsetBy: maxLineBytes)
        while end > line.utf8.startIndex && !line.unicodeScalars.indices.contains(end) {
            end = line.utf8.index(before: end)
        }
        return String(line[..<end]) + Self.truncatedSuffix
    }

    /// An agent's clock may be wrong, or lie: a time outside the deployment's lifetime becomes now.
    static func clamp(_ time: Date, from created: Date, to now: Date) -> Date {
        time < created.addingTimeInterval(-60) || time > now.addingTimeInterval(60) ? now : time
    }
}
