import Foundation

/// Text an agent reports (a failure's reason, a local action's) as the server keeps it: the machine
/// may be hostile, and people read the text in terminals and browsers.
enum ReportedText {
    /// One line without control characters (escape sequences, line breaks), cut visibly after
    /// `maxCharacters`.
    static func line(_ text: String, maxCharacters: Int = 1000) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: scalars.append(" ")
            default: scalars.append(scalar)
            }
        }
        let line = String(scalars)
        guard line.count > maxCharacters else { return line }
        return line.prefix(maxCharacters) + " … [cut]"
    }
}
