import Foundation

/// Reading and writing key files with the permissions a key needs.
enum KeyFile {
    static func read(_ path: String, what: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NixKeyError(subject: "\(what) '\(path)'", reason: "it cannot be read (missing or no permission)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw NixKeyError(subject: "\(what) '\(path)'", reason: "it is not text")
        }
        return text
    }

    /// Creates the file with `mode` from the start, so a secret is never briefly world-readable.
    static func write(_ text: String, to path: String, mode: mode_t, overwrite: Bool, what: String) throws {
        let subject = "\(what) '\(path)'"
        let flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (overwrite ? 0 : O_EXCL)
        let fd = open(path, flags, mode)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw NixKeyError(subject: subject, reason: "it already exists; remove it or ask to overwrite it")
            }
            throw NixKeyError(subject: subject, reason: "it cannot be created: \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        // An existing file keeps its old mode through open(); set it explicitly.
        guard fchmod(fd, mode) == 0 else {
            throw NixKeyError(
                subject: subject, reason: "its permissions cannot be set: \(String(cString: strerror(errno)))")
        }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else {
                throw NixKeyError(subject: subject, reason: "writing failed: \(String(cString: strerror(errno)))")
            }
            written += n
        }
    }
}
