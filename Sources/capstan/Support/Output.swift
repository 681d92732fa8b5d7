import CapstanModel
import Foundation

#if canImport(Glibc)
    import Glibc
    private let systemWrite = Glibc.write
#elseif canImport(Darwin)
    import Darwin
    private let systemWrite = Darwin.write
#endif

/// Unbuffered lines on stdout, so a follower sees them as they happen even through a pipe.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }
}

/// Raw writes to fd 1, so NAR chunks go out in one system call each without another layer of buffering.
enum StandardOutput {
    static func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var pointer = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let count = systemWrite(STDOUT_FILENO, pointer, left)
            if count < 0 {
                if errno == EINTR { continue }
                throw CommandFailure("cannot write to standard output: \(String(cString: strerror(errno)))")
            }
            pointer += count
            left -= count
        }
    }
}

/// Prints a value as pretty JSON on stdout, for `--json`.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder.capstan
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Writes a line to stderr (progress and diagnostics stay off stdout).
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}
