import Foundation

/// One entry of secrets.json: `{ "kind": "Secret", "data": {…}, "condition"?: … }`.
public struct Secret: Sendable, Equatable {
    public var data: [String: JSONValue]
    public var condition: SecretCondition?

    public init(data: [String: JSONValue], condition: SecretCondition? = nil) {
        self.data = data
        self.condition = condition
    }

    public var json: JSONValue {
        var object: [String: JSONValue] = ["kind": .string("Secret"), "data": .object(data)]
        if let condition { object["condition"] = condition.json }
        return .object(object)
    }
}

/// The secrets file the Hercules CI agent reads and `hci secret add` writes, keyed by secret name.
public struct SecretsFile: Sendable, Equatable {
    public var path: String
    public var secrets: [String: Secret]

    public init(path: String, secrets: [String: Secret] = [:]) {
        self.path = path
        self.secrets = secrets
    }

    /// Reads the file; one malformed entry fails the whole file.
    public static func load(_ path: String) throws(SecretsFileError) -> SecretsFile {
        guard FileManager.default.fileExists(atPath: path) else { throw .missing(path: path) }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        return try parse(data, path: path)
    }

    public static func parse(_ data: Data, path: String) throws(SecretsFileError) -> SecretsFile {
        let json: JSONValue
        do {
            json = try JSONValue.parse(data)
        } catch {
            throw .malformed(path: path, entry: nil, reason: "not valid JSON")
        }
        guard let object = json.objectValue else {
            throw .malformed(path: path, entry: nil, reason: "expected an object of secrets, found \(json.typeName)")
        }
        var secrets: [String: Secret] = [:]
        for (name, entry) in object {
            do throws(SecretConditionError) {
                secrets[name] = try Secret(entry: entry)
            } catch {
                throw .malformed(path: path, entry: name, reason: error.description)
            }
        }
        return SecretsFile(path: path, secrets: secrets)
    }

    /// The file's contents: two-space indentation and a trailing newline.
    public var rendered: String {
        JSONValue.object(secrets.mapValues(\.json)).rendered() + "\n"
    }

    /// Writes to a temporary file beside the target, readable by its owner only, then renames it.
    public func write() throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw SecretsFileError.unwritable(path: temporary, errno: errno) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: Data(rendered.utf8))
            try handle.synchronize()
            try handle.close()
        } catch {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw SecretsFileError.unwritable(path: path, errno: code)
        }
    }
}

extension Secret {
    init(entry: JSONValue) throws(SecretConditionError) {
        guard let object = entry.objectValue else {
            throw SecretConditionError("expected an object, found \(entry.typeName)")
        }
        guard object["kind"] == .string("Secret") else {
            throw SecretConditionError("\"kind\" must be \"Secret\", found \(object["kind"]?.compact ?? "nothing")")
        }
        guard let data = object["data"]?.objectValue else {
            throw SecretConditionError("\"data\" must be an object, found \(object["data"]?.typeName ?? "nothing")")
        }
        let unknown = Set(object.keys).subtracting(["kind", "data", "condition"])
        if let key = unknown.sorted().first { throw SecretConditionError("unknown field \"\(key)\"") }
        var condition: SecretCondition?
        if let json = object["condition"] {
            do throws(SecretConditionError) {
                condition = try SecretCondition(json: json)
            } catch {
                throw SecretConditionError("condition: \(error.description)")
            }
        }
        self.init(data: data, condition: condition)
    }
}

public enum SecretsFileError: Error, CustomStringConvertible, Equatable {
    case missing(path: String)
    case unreadable(path: String, reason: String)
    case malformed(path: String, entry: String?, reason: String)
    case unwritable(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .missing(let path):
            "Secrets file \(path) does not exist; create it with `capstan secret init` or `capstan secret add`, "
                + "or name another with --secrets"
        case .unreadable(let path, let reason):
            "Could not read secrets file \(path): \(reason)"
        case .malformed(let path, let entry?, let reason):
            "Could not parse secrets file \(path): entry \"\(entry)\": \(reason)"
        case .malformed(let path, nil, let reason):
            "Could not parse secrets file \(path): \(reason)"
        case .unwritable(let path, let code):
            "Could not write secrets file \(path): \(String(cString: strerror(code)))"
        }
    }
}
