import Foundation

/// A check an agent runs on its machine after activating a configuration; a failing one rolls
/// the deployment back. Written in deploy.json (and given to the agent) as
/// `{"systemd": "no-failed-units"}`, `{"http": URL, "status": 200, "timeout": "10s"}` or
/// `{"command": ["/path", "arg"], "timeout": "30s"}`.
public enum HealthCheck: Codable, Sendable, Hashable, CustomStringConvertible {
    /// No systemd unit that was fine before the switch has failed after it.
    case noFailedUnits
    /// A GET of `url` from the machine answers `status`.
    case http(url: String, status: Int, timeout: TimeSpan)
    /// The command exits 0.
    case command([String], timeout: TimeSpan)

    public static let defaultHTTPStatus = 200
    public static let defaultHTTPTimeout = TimeSpan.seconds(10)
    public static let defaultCommandTimeout = TimeSpan.seconds(30)

    /// How logs, results and reasons name the check.
    public var description: String {
        switch self {
        case .noFailedUnits: "systemd no-failed-units"
        case .http(let url, _, _): "http \(url)"
        case .command(let arguments, _): "command \(arguments.joined(separator: " "))"
        }
    }

    public var timeout: TimeSpan? {
        switch self {
        case .noFailedUnits: nil
        case .http(_, _, let timeout), .command(_, let timeout): timeout
        }
    }

    /// The JSON form, field by field.
    struct Fields: Codable {
        var systemd: String?
        var http: String?
        var status: Int?
        var timeout: TimeSpan?
        var command: [String]?
    }

    static let fieldNames: Set<String> = ["systemd", "http", "status", "timeout", "command"]

    /// One check of deploy.json (`field` names it in errors, e.g. `checks[0]`).
    public static func parse(_ value: Any, field: String) throws(DeploySpecError) -> HealthCheck {
        let example = #"{"systemd": "no-failed-units"}, {"http": "http://localhost/"} or {"command": ["/path", "arg"]}"#
        guard let object = value as? [String: Any] else {
            throw DeploySpecError("\(field) must be an object such as \(example)")
        }
        for key in object.keys.sorted() where !fieldNames.contains(key) {
            throw DeploySpecError(
                "\(field): unknown field \"\(key)\"; a check has systemd, http (with status, timeout) or command (with timeout)"
            )
        }
        let fields: Fields
        do {
            fields = try JSONDecoder().decode(Fields.self, from: try JSONSerialization.data(withJSONObject: object))
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.dataCorrupted(context) {
            let key = context.codingPath.first?.stringValue ?? "value"
            let expected =
                [
                    "status": "a number, e.g. 200", "timeout": "a duration, e.g. \"10s\"",
                    "command": "a list of strings",
                ][
                    key] ?? "a string"
            throw DeploySpecError("\(field).\(key) must be \(expected)")
        } catch {
            throw DeploySpecError("\(field): \(error)")
        }
        return try HealthCheck(fields, field: field)
    }

    init(_ fields: Fields, field: String) throws(DeploySpecError) {
        let kinds = [fields.systemd != nil, fields.http != nil, fields.command != nil].filter { $0 }.count
        guard kinds == 1 else {
            throw DeploySpecError("\(field) must have exactly one of \"systemd\", \"http\" and \"command\"")
        }
        if let timeout = fields.timeout, timeout.duration <= .zero {
            throw DeploySpecError("\(field).timeout must be longer than 0s")
        }
        if fields.status != nil && fields.http == nil {
            throw DeploySpecError("\(field).status belongs to an http check only")
        }
        if let unit = fields.systemd {
            guard unit == "no-failed-units" else {
                throw DeploySpecError(
                    "\(field).systemd: \(unit.debugDescription) is unknown; the systemd check is \"no-failed-units\"")
            }
            guard fields.timeout == nil else {
                throw DeploySpecError("\(field).timeout does not apply to a systemd check")
            }
            self = .noFailedUnits
        } else if let url = fields.http {
            guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
                scheme == "http" || scheme == "https", components.host?.isEmpty == false
            else {
                throw DeploySpecError("\(field).http: \(url.debugDescription) is not an http:// or https:// URL")
            }
            let status = fields.status ?? Self.defaultHTTPStatus
            guard (100...599).contains(status) else {
                throw DeploySpecError("\(field).status: \(status) is not an HTTP status (100–599)")
            }
            self = .http(url: url, status: status, timeout: fields.timeout ?? Self.defaultHTTPTimeout)
        } else {
            let arguments = fields.command ?? []
            guard let program = arguments.first, !program.isEmpty else {
                throw DeploySpecError("\(field).command must name a program: [\"/path/to/check\", \"arg\"…]")
            }
            self = .command(arguments, timeout: fields.timeout ?? Self.defaultCommandTimeout)
        }
    }

    var fields: Fields {
        switch self {
        case .noFailedUnits: Fields(systemd: "no-failed-units")
        case .http(let url, let status, let timeout): Fields(http: url, status: status, timeout: timeout)
        case .command(let arguments, let timeout): Fields(timeout: timeout, command: arguments)
        }
    }

    public init(from decoder: any Decoder) throws {
        let fields = try Fields(from: decoder)
        do {
            try self.init(fields, field: "check")
        } catch {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws { try fields.encode(to: encoder) }
}

/// How one health check went, as the agent reports it.
public struct CheckResult: Codable, Sendable, Hashable {
    /// The check's description, e.g. `http http://localhost:8080/`.
    public var check: String
    public var passed: Bool
    /// How many times it ran.
    public var attempts: Int
    /// The last lines of its last attempt (what a command printed, the HTTP status, the failed units).
    public var output: [String]

    public init(check: String, passed: Bool, attempts: Int, output: [String]) {
        self.check = check
        self.passed = passed
        self.attempts = attempts
        self.output = output
    }
}

/// What a deployment asks of its agent's activation, from deploy.json. The agent adds its own
/// checks; what is absent here takes the agent's setting.
public struct ActivationSettings: Codable, Sendable, Hashable {
    /// `checks` of deploy.json, then the agent's entry of `agentChecks`.
    public var checks: [HealthCheck]
    /// How long failing checks are retried.
    public var grace: TimeSpan?
    /// Lowers the agent's `--activation-timeout` for this deployment.
    public var timeout: TimeSpan?

    public init(checks: [HealthCheck] = [], grace: TimeSpan? = nil, timeout: TimeSpan? = nil) {
        self.checks = checks
        self.grace = grace
        self.timeout = timeout
    }

    public var isEmpty: Bool { checks.isEmpty && grace == nil && timeout == nil }
}
