import CapstanModel
import Foundation
import NixCore

/// What the server accepts of an agent's report of a local action: the report comes from a machine
/// that may be hostile, and becomes an audit entry every admin reads in a terminal or a browser.
public struct LocalActionRules: Sendable, Equatable {
    /// Reports recorded per agent per hour; a person on the machine does not switch it more often.
    public var maxReportsPerHour: Int
    public var maxReasonCharacters: Int

    public init(maxReportsPerHour: Int = 30, maxReasonCharacters: Int = 1000) {
        self.maxReportsPerHour = maxReportsPerHour
        self.maxReasonCharacters = maxReasonCharacters
    }

    /// Why a report is not recorded, for the server's log.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// The report as it is recorded: an id the agent made (`local-<uuid>`) and a reason of one printable
    /// line of bounded length (its store paths were parsed with the message).
    func accept(_ report: LocalActionReport) throws(Refusal) -> LocalActionReport {
        // Letters, digits and dashes only: the id is matched as a prefix in SQL (no LIKE wildcards).
        guard (1...64).contains(report.id.utf8.count),
            report.id.unicodeScalars.allSatisfy({
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-")
            })
        else { throw Refusal(description: "the report id is not 1 to 64 letters, digits or dashes") }
        var accepted = report
        accepted.reason = report.reason.map { ReportedText.line($0, maxCharacters: maxReasonCharacters) }
        return accepted
    }
}
