import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A failure reading or writing the agent's state directory.
public struct StateFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var operation: String
    public var detail: String

    public var description: String {
        "cannot \(operation) \(path): \(detail); check that the state directory is writable by the agent (--state-dir)"
    }

    static func errno(_ operation: String, _ path: String) -> StateFileError {
        StateFileError(path: path, operation: operation, detail: String(cString: strerror(Glibc.errno)))
    }
}

/// Small file helpers with the guarantees the agent relies on: atomic replacement, private modes.
enum StateFiles {
    /// Writes `data` to a temporary file and renames it over `path`, so readers never see half a file.
    static func writeAtomically(_ data: Data, to path: String, mode: mode_t = 0o600) throws {
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw StateFileError.errno("create", temporary) }
        let written = data.withUnsafeBytes { buffer -> Int in
            guard let base = buffer.baseAddress else { return 0 }
            var offset = 0
            while offset < buffer.count {
                let n = write(fd, base + offset, buffer.count - offset)
                if n < 0 {
                    if Glibc.errno == EINTR { continue }
                    return -1
                }
                offset += n
            }
            return offset
        }
        guard written == data.count, fsync(fd) == 0 else {
            let error = StateFileError.errno("write", temporary)
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else {
            let error = StateFileError.errno("rename into place", path)
            unlink(temporary)
            throw error
        }
    }

    static func writeJSON<T: Encodable>(_ value: T, to path: String, mode: mode_t = 0o600) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        try writeAtomically(try encoder.encode(value), to: path, mode: mode)
    }

    /// The decoded file, nil when it does not exist.
    static func readJSON<T: Decodable>(_ type: T.Type, from path: String) throws -> T? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw StateFileError(path: path, operation: "read", detail: "\(error)")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(T.self, from: data)
        } catch {
            throw StateFileError(path: path, operation: "decode", detail: "\(error)")
        }
    }

    /// Creates a directory (and its parents) readable only by the agent: it holds the token.
    static func makePrivateDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(
                atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw StateFileError(path: path, operation: "create directory", detail: "\(error)")
        }
    }
}
