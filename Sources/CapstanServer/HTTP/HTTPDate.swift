#if canImport(Glibc)
    import Glibc
#endif

/// The `Date` header field as Hummingbird writes it (RFC 9110, `Sun, 06 Nov 1994 08:49:37 GMT`),
/// formatted again only when the second changes.
struct HTTPDate {
    private var second: time_t = -1
    private var text = ""

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    mutating func now() -> String {
        var clock = time(nil)
        guard clock != second else { return text }
        second = clock
        text = Self.format(&clock)
        return text
    }

    static func format(_ clock: inout time_t) -> String {
        var parts = tm()
        gmtime_r(&clock, &parts)
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) "
            + "\(parts.tm_year + 1900) \(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
    }
}
