import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The data directory holds every cache's signing key and private NARs: only the server's user
/// may read it. New files are private whatever the umask the server was started with.
public enum DataDirectory {
    public struct Exposed: Error, CustomStringConvertible {
        public var path: String
        public var mode: mode_t
        public var description: String {
            "data directory \(path) can be read or written by other users (mode \(String(mode & 0o777, radix: 8))); "
                + "it holds every cache's signing key and private NARs: run `chmod 700 \(path)` and start again"
        }
    }

    /// Makes every file this process creates private, creates the directory (mode 0700) when it is
    /// missing, and refuses one that group or others may read, write or enter.
    public static func prepare(_ path: String) throws {
        umask(0o077)
        var info = stat()
        if stat(path, &info) != 0 {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            guard stat(path, &info) == 0 else { throw CocoaError(.fileNoSuchFile) }
        }
        guard info.st_mode & 0o077 == 0 else { throw Exposed(path: path, mode: info.st_mode) }
    }
}
