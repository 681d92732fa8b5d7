import CapstanAgent
import Foundation
import Testing

/// The rules of `--maintenance-window`: what it accepts, what it refuses and when it is open.
@Suite("Maintenance windows")
struct MaintenanceWindowTests {
    static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "Europe/Berlin")!
        return calendar
    }()

    /// 2026-11-29 is a Sunday.
    static func date(_ day: Int, _ hour: Int, _ minute: Int) -> Date {
        calendar.date(from: DateComponents(year: 2026, month: 11, day: day, hour: hour, minute: minute))!
    }

    @Test(
        "open and closed",
        arguments: [
            ("Sun 02:00-04:00", 29, 2, 0, true), ("Sun 02:00-04:00", 29, 3, 59, true),
            ("Sun 02:00-04:00", 29, 4, 0, false), ("Sun 02:00-04:00", 29, 1, 59, false),
            ("Sun 02:00-04:00", 30, 3, 0, false), ("02:00-04:00", 30, 3, 0, true),
            ("02:00-04:00", 24, 3, 0, true), ("sunday 02:00-04:00", 29, 3, 0, true),
            // Crossing midnight: the part after midnight belongs to the day the window started.
            ("Sat 23:00-01:00", 28, 23, 30, true), ("Sat 23:00-01:00", 29, 0, 30, true),
            ("Sat 23:00-01:00", 29, 23, 30, false), ("Sat 23:00-01:00", 30, 0, 30, false),
            ("Sat,Sun 23:00-01:00", 30, 0, 30, true), ("22:00-02:00", 24, 1, 0, true),
            ("22:00-02:00", 24, 2, 0, false), ("22:00-02:00", 24, 21, 59, false),
        ])
    func contains(window: String, day: Int, hour: Int, minute: Int, open: Bool) throws {
        let parsed = try MaintenanceWindow(parsing: window)
        #expect(parsed.contains(Self.date(day, hour, minute), calendar: Self.calendar) == open)
    }

    @Test("an occurrence starts where the window opened, the day before for the part after midnight")
    func occurrence() throws {
        let window = try MaintenanceWindow(parsing: "Sat 23:00-01:00")
        #expect(window.occurrence(containing: Self.date(29, 0, 30), calendar: Self.calendar) == Self.date(28, 23, 0))
        #expect(window.occurrence(containing: Self.date(28, 23, 10), calendar: Self.calendar) == Self.date(28, 23, 0))
        #expect(window.description == "Sat 23:00-01:00")
        #expect(try MaintenanceWindow(parsing: "02:00-04:00").description == "02:00-04:00")
    }

    @Test(
        "bad input names the input and the expected form",
        arguments: [
            ("", nil), ("Sun", nil), ("2:00-4:00", nil), ("25:00-26:00", nil), ("02:00", nil),
            ("Sun 02:00-04:00 UTC", nil), ("Funday 02:00-04:00", "\"Funday\" is not a day"),
            ("Sun,,Mon 02:00-04:00", "\"\" is not a day"), ("03:00-03:00", "the window is empty"),
        ] as [(String, String?)])
    func refused(input: String, detail: String?) {
        do {
            _ = try MaintenanceWindow(parsing: input)
            Issue.record("\(input.debugDescription) was accepted")
        } catch {
            #expect(error.description.hasPrefix("maintenance window \(input.debugDescription): "))
            #expect(error.description.contains(#"expected [DAYS ]HH:MM-HH:MM"#))
            if let detail { #expect(error.description.contains(detail)) }
        }
    }
}
