import Foundation

/// Ends a helper process when the test process does, even when nothing else would: a server kept
/// for the whole suite in a static is never deinitialised, and a crashed run runs no cleanup.
public enum ProcessWatchdog {
    /// A shell that waits while both this process and `pid` live, then kills `pid`. Its output goes
    /// nowhere, so it holds no pipe of `swift test` open; it ends by itself when `pid` ends first.
    public static func killWhenTestsEnd(_ pid: Int32) {
        let script = """
            while kill -0 \(getpid()) 2>/dev/null && kill -0 \(pid) 2>/dev/null; do sleep 1; done
            kill -9 \(pid) 2>/dev/null
            exit 0
            """
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = ["-c", script]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try? watchdog.run()
    }
}
