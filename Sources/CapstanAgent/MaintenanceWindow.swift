import Foundation

/// When an agent may reboot its machine: a daily or weekly stretch of the machine's local time,
/// e.g. `Sun 02:00-04:00`, `Sat,Sun 23:00-01:00` (crossing midnight) or `02:00-04:00` (every day).
public struct MaintenanceWindow: Sendable, Equatable, CustomStringConvertible {
    /// Weekdays the window starts on, 1 = Sunday … 7 = Saturday (Calendar's numbering); empty: every day.
    public var weekdays: Set<Int>
    /// Minutes after midnight.
    public var start: Int
    /// Minutes after midnight; at or before `start` when the window ends the next day.
    public var end: Int

    static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
    static let expectedForm =
        #"expected [DAYS ]HH:MM-HH:MM in the machine's local time, e.g. "Sun 02:00-04:00", "Sat,Sun 23:00-01:00" or "02:00-04:00" (days: Mon, Tue, Wed, Thu, Fri, Sat, Sun)"#

    public init(parsing text: String) throws(MaintenanceWindowError) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 1 || parts.count == 2 else { throw MaintenanceWindowError(input: text) }
        var weekdays: Set<Int> = []
        if parts.count == 2 {
            for day in parts[0].split(separator: ",", omittingEmptySubsequences: false) {
                let name = day.lowercased()
                guard name.count >= 3, let index = Self.dayNames.firstIndex(where: { name.hasPrefix($0) }),
                    Self.fullDayNames[index].hasPrefix(name)
                else { throw MaintenanceWindowError(input: text, detail: "\"\(day)\" is not a day") }
                weekdays.insert(index + 1)
            }
        }
        let times = parts[parts.count - 1].split(separator: "-", omittingEmptySubsequences: false)
        guard times.count == 2, let start = Self.minutes(times[0]), let end = Self.minutes(times[1]) else {
            throw MaintenanceWindowError(input: text)
        }
        guard start != end else { throw MaintenanceWindowError(input: text, detail: "the window is empty") }
        self.weekdays = weekdays
        self.start = start
        self.end = end
    }

    static let fullDayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]

    /// `HH:MM` as minutes after midnight.
    static func minutes(_ text: Substring) -> Int? {
        let fields = text.split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 2, fields[0].count == 2, fields[1].count == 2, let hours = Int(fields[0]),
            let minutes = Int(fields[1]), (0..<24).contains(hours), (0..<60).contains(minutes)
        else { return nil }
        return hours * 60 + minutes
    }

    /// The start of the window's occurrence that `date` falls in; nil when it falls in none.
    public func occurrence(containing date: Date, calendar: Calendar = .current) -> Date? {
        let day = calendar.startOfDay(for: date)
        let components = calendar.dateComponents([.hour, .minute, .weekday], from: date)
        let minute = (components.hour ?? 0) * 60 + (components.minute ?? 0)
        let weekday = components.weekday ?? 1
        let crossesMidnight = end < start
        if minute >= start && (crossesMidnight || minute < end) && startsOn(weekday) {
            return calendar.date(byAdding: .minute, value: start, to: day)
        }
        // The part after midnight of a window that began the day before.
        if crossesMidnight && minute < end && startsOn(weekday == 1 ? 7 : weekday - 1),
            let yesterday = calendar.date(byAdding: .day, value: -1, to: day)
        {
            return calendar.date(byAdding: .minute, value: start, to: yesterday)
        }
        return nil
    }

    public func contains(_ date: Date, calendar: Calendar = .current) -> Bool {
        occurrence(containing: date, calendar: calendar) != nil
    }

    private func startsOn(_ weekday: Int) -> Bool { weekdays.isEmpty || weekdays.contains(weekday) }

    public var description: String {
        let days = weekdays.sorted().map { Self.dayNames[$0 - 1].capitalized }.joined(separator: ",")
        let times = String(format: "%02d:%02d-%02d:%02d", start / 60, start % 60, end / 60, end % 60)
        return days.isEmpty ? times : days + " " + times
    }
}

/// A maintenance window that could not be read; says what was given and the form expected.
public struct MaintenanceWindowError: Error, Sendable, Equatable, CustomStringConvertible {
    public var input: String
    public var detail: String?

    public init(input: String, detail: String? = nil) {
        self.input = input
        self.detail = detail
    }

    public var description: String {
        "maintenance window \(input.debugDescription): " + (detail.map { "\($0); " } ?? "")
            + MaintenanceWindow.expectedForm
    }
}
