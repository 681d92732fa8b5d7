import ArgumentParser
import CapstanModel
import Foundation

/// A duration given on the command line: `90s`, `30m`, `2h`, `1m30s`, `500ms` or plain seconds; more than zero.
struct DurationArgument: ExpressibleByArgument {
    var duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        guard let span = TimeSpan(parsing: argument), span.duration > .zero else { return nil }
        duration = span.duration
    }

    var defaultValueDescription: String { TimeSpan(duration).description }
}
