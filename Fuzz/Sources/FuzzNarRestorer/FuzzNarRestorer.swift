import Foundation

/// One scratch directory for the whole run, in memory when /dev/shm is there.
let scratch: String = {
    let parent = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NSTemporaryDirectory()
    var template = Array("\(parent)/capstan-fuzz-restore.XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp failed: errno \(errno)") }
    return String(cString: made)
}()

@main enum FuzzNarRestorer {
    static func main() {
        // libFuzzer ends the process itself (at -max_total_time, on a crash): clean up at exit.
        atexit { NarRestorerHarness.removeTree(scratch) }
        exit(runFuzzer { data, size in fuzzOne(data, size) { try NarRestorerHarness.run($0, scratch: scratch) } })
    }
}
