import ArgumentParser
import Foundation

/// A duration given on the command line: `90s`, `30m`, `2h`, or plain seconds.
struct DurationArgument: ExpressibleByArgument {
    var duration: Duration

    init?(argument: String) {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600]
        var text = argument.trimmingCharacters(in: .whitespaces)
        var multiplier: Int64 = 1
        if let last = text.last, let unit = units[last] {
            multiplier = unit
            text.removeLast()
        }
        guard let value = Int64(text), value > 0 else { return nil }
        duration = .seconds(value * multiplier)
    }
}
