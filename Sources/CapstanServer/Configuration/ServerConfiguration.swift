import CapstanModel
import CapstanServices
import Foundation

/// Everything `capstan serve` needs to start. Values come, in increasing precedence, from the
/// defaults, the configuration file, `CAPSTAN_*` environment variables and command-line flags.
public struct ServerConfiguration: Sendable, Equatable {
    public var dataDirectory: String = "./capstan-data"
    public var listenHost: String = "127.0.0.1"
    public var listenPort: Int = 8080
    /// The URL clients and agents use to reach this server; derived from `listen` when absent.
    public var publicURL: String?
    /// Absent: embedded SQLite under the data directory. `postgres://…`: PostgreSQL.
    public var databaseURL: String?
    /// Largest accepted NAR (uncompressed), a guard against endless uploads.
    public var maxNarSize: UInt64 = 64 << 30
    /// Name of the workspace created on first start.
    public var defaultWorkspace: String = "default"
    /// How long after an agent reconnects the server waits for it to report finished deployments
    /// before failing the ones it no longer runs.
    public var agentReconcileDelay: Duration = .seconds(10)
    /// How often the server pings each connected agent; one that has not answered by the next ping
    /// is disconnected (and reconnects), so a dead agent is noticed within two periods.
    public var agentPingInterval: Duration = .seconds(20)
    /// The host name under which each cache is also served as `<cache>.<host>` (by the Host
    /// header), as cachix clients expect; new caches' keys are then named `<cache>.<host>-1`.
    public var cacheHost: String?
    /// How long uploads may stay unfinished, and how much space they may take per cache.
    public var uploadLimits = UploadLimits()
    /// How much agents may log per line, per message and per deployment.
    public var logLimits = LogLimits()
    /// Which addresses webhooks may be delivered to: public ones, plus the networks allowed here.
    public var webhookDestinations = WebhookDestinationPolicy()
    /// Bounds on clients' connections: header and idle timeouts, header size, how many at once.
    public var httpLimits = HTTPLimits()
    /// A second address serving only `/metrics` (and `/health`), e.g. on an internal interface.
    public var metricsListen: ListenAddress?
    /// The bearer token `/metrics` asks for; without one, `/metrics` is served only on `metricsListen`.
    public var metricsToken: String?

    public struct ListenAddress: Sendable, Equatable {
        public var host: String
        public var port: Int

        init(_ address: (host: String, port: Int)) {
            host = address.host
            port = address.port
        }
    }
    /// Garbage collection's interval and grace period, and how often path uses are recorded.
    public var cacheLifecycle = CacheLifecycleSettings()
    /// Absent: blobs are files under the data directory. `s3://BUCKET[/PREFIX]?endpoint=URL&region=R`:
    /// an S3-compatible object store (credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`).
    public var blobStore: String?
    /// With an object store: answer NAR downloads with a redirect to a presigned URL of the object.
    public var narRedirect = false
    /// Narinfo requests whose answer is in memory are answered on the connection's event loop,
    /// before the router (`NarInfoFastPath`); off, every request goes through the router.
    public var narInfoFastPath = true

    public init() {}

    public var effectivePublicURL: String {
        if let publicURL { return publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL }
        let host = listenHost == "0.0.0.0" || listenHost == "::" ? "127.0.0.1" : listenHost
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "http://\(shownHost):\(listenPort)"
    }

    /// Applies `host:port`, `:port` or `[v6]:port`.
    public mutating func setListen(_ value: String) throws(ConfigurationError) {
        (listenHost, listenPort) = try Self.address(value, key: "listen")
    }

    static func address(_ value: String, key: String) throws(ConfigurationError) -> (host: String, port: Int) {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard let colon = trimmed.lastIndex(of: ":"), let port = Int(trimmed[trimmed.index(after: colon)...]),
            (0...65535).contains(port)
        else {
            throw ConfigurationError(key: key, value: value, reason: "expected HOST:PORT, e.g. 127.0.0.1:8080")
        }
        var host = String(trimmed[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "127.0.0.1" : host, port)
    }

    /// Applies one setting by its configuration-file key.
    public mutating func set(_ key: String, _ value: String) throws(ConfigurationError) {
        switch key {
        case "data_dir", "data-dir": dataDirectory = value
        case "listen": try setListen(value)
        case "public_url", "public-url": publicURL = value.isEmpty ? nil : value
        case "database_url", "database-url": databaseURL = value.isEmpty ? nil : value
        case "max_nar_size", "max-nar-size":
            guard let size = UInt64(value) else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of bytes")
            }
            maxNarSize = size
        case "default_workspace", "default-workspace": defaultWorkspace = value
        case "agent_reconcile_seconds", "agent-reconcile-seconds":
            guard let seconds = Int(value), seconds >= 0 else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of seconds")
            }
            agentReconcileDelay = .seconds(seconds)
        case "agent_ping_seconds", "agent-ping-seconds":
            agentPingInterval = .seconds(try Self.positive(key, value, "a number of seconds"))
        case "upload_expiry_seconds", "upload-expiry-seconds":
            guard let seconds = Int(value), seconds > 0 else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of seconds")
            }
            uploadLimits.expiry = .seconds(seconds)
        case "max_pending_upload_bytes", "max-pending-upload-bytes":
            guard let bytes = UInt64(value) else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of bytes")
            }
            uploadLimits.maxPendingBytesPerCache = bytes
        case "max_reference_wait_seconds", "max-reference-wait-seconds":
            guard let seconds = Int(value), seconds >= 0, seconds <= 86400 else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of seconds from 0 to 86400")
            }
            uploadLimits.maxReferenceWait = .seconds(seconds)
        case "max_log_lines", "max-log-lines":
            guard let lines = Int(value), lines > 0 else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of lines per deployment")
            }
            logLimits.maxLinesPerDeployment = lines
        case "max_log_line_bytes", "max-log-line-bytes":
            guard let bytes = Int(value), bytes >= 80 else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of bytes, at least 80")
            }
            logLimits.maxLineBytes = bytes
        case "cache_host", "cache-host":
            let host = value.trimmingCharacters(in: .whitespaces).lowercased()
            guard host.isEmpty || CacheHost(host) != nil else {
                throw ConfigurationError(
                    key: key, value: value,
                    reason: "expected a host name, optionally with :PORT, e.g. cache.example.org")
            }
            cacheHost = host.isEmpty ? nil : host
        case "http_header_timeout_seconds", "http-header-timeout-seconds":
            httpLimits.headerTimeout = .seconds(try Self.positive(key, value, "a number of seconds"))
        case "http_idle_timeout_seconds", "http-idle-timeout-seconds":
            httpLimits.idleTimeout = .seconds(try Self.positive(key, value, "a number of seconds"))
        case "http_max_header_bytes", "http-max-header-bytes":
            httpLimits.maxHeaderBytes = try Self.positive(key, value, "a number of bytes")
        case "shutdown_grace_seconds", "shutdown-grace-seconds":
            guard let seconds = Int(value), seconds >= 0 else {
                throw ConfigurationError(key: key, value: value, reason: "expected a number of seconds")
            }
            httpLimits.shutdownGrace = .seconds(seconds)
        case "max_connections", "max-connections":
            httpLimits.maxConnections = value.isEmpty ? nil : try Self.positive(key, value, "a number of connections")
        case "metrics_listen", "metrics-listen":
            metricsListen = value.isEmpty ? nil : ListenAddress(try Self.address(value, key: key))
        case "metrics_token", "metrics-token":
            metricsToken = value.isEmpty ? nil : value
        case "webhook_allow_networks", "webhook-allow-networks":
            guard let networks = IPNetwork.list(value) else {
                throw ConfigurationError(
                    key: key, value: value,
                    reason: "expected networks in CIDR notation, comma-separated, e.g. 127.0.0.0/8, 10.1.0.0/16")
            }
            webhookDestinations.allowedNetworks = networks
        case "blob_store", "blob-store":
            blobStore = value.isEmpty ? nil : value
        case "nar_redirect", "nar-redirect":
            narRedirect = value.isEmpty ? false : try Self.flag(key, value)
        case "narinfo_fast_path", "narinfo-fast-path":
            narInfoFastPath = try Self.flag(key, value)
        case "gc_interval", "gc-interval":
            cacheLifecycle.gcInterval = try Self.duration(key, value)
        case "gc_blob_grace", "gc-blob-grace":
            cacheLifecycle.blobGrace = try Self.duration(key, value)
        case "access_flush_interval", "access-flush-interval":
            cacheLifecycle.accessFlushInterval = try Self.duration(key, value)
        default:
            throw ConfigurationError(
                key: key, value: value,
                reason: "unknown setting; known: " + Self.keys.joined(separator: ", "))
        }
    }

    static let keys = [
        "data_dir", "listen", "public_url", "database_url", "max_nar_size", "default_workspace",
        "agent_reconcile_seconds", "agent_ping_seconds", "cache_host", "upload_expiry_seconds",
        "max_pending_upload_bytes", "max_reference_wait_seconds",
        "max_log_lines", "max_log_line_bytes",
        "webhook_allow_networks", "http_header_timeout_seconds", "http_idle_timeout_seconds", "http_max_header_bytes",
        "max_connections", "shutdown_grace_seconds", "metrics_listen", "metrics_token",
        "gc_interval", "gc_blob_grace", "access_flush_interval", "blob_store", "nar_redirect",
        "narinfo_fast_path",
    ]

    private static func flag(_ key: String, _ value: String) throws(ConfigurationError) -> Bool {
        switch value.lowercased() {
        case "true", "yes", "1": return true
        case "false", "no", "0": return false
        default: throw ConfigurationError(key: key, value: value, reason: "expected true or false")
        }
    }

    private static func positive(_ key: String, _ value: String, _ what: String) throws(ConfigurationError) -> Int {
        guard let number = Int(value), number > 0 else {
            throw ConfigurationError(key: key, value: value, reason: "expected \(what), more than 0")
        }
        return number
    }

    /// A duration more than zero: `1h`, `30m`, `90s`, `7d`, or plain seconds.
    static func duration(_ key: String, _ value: String) throws(ConfigurationError) -> Duration {
        guard let span = TimeSpan(parsing: value), span.duration > .zero else {
            throw ConfigurationError(key: key, value: value, reason: "expected a duration such as 1h, 30m or 90s")
        }
        return span.duration
    }

    /// Environment variables, e.g. `CAPSTAN_LISTEN`, `CAPSTAN_DATABASE_URL`.
    public mutating func apply(environment: [String: String]) throws(ConfigurationError) {
        for key in Self.keys {
            if let value = environment["CAPSTAN_" + key.uppercased()] { try set(key, value) }
        }
    }

    /// Reads a configuration file: `key = value` lines, `#` comments, values optionally quoted
    /// (the flat subset of TOML, so the file is also valid TOML).
    public mutating func apply(fileAt path: String) throws(ConfigurationError) {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(
                key: "config", value: path, reason: "cannot read the file: \(error.localizedDescription)")
        }
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw ConfigurationError(key: "\(path):\(number + 1)", value: line, reason: "expected key = value")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.hasPrefix("\"") {
                guard let close = value.dropFirst().firstIndex(of: "\"") else {
                    throw ConfigurationError(key: "\(path):\(number + 1)", value: line, reason: "unterminated string")
                }
                value = String(value[value.index(after: value.startIndex)..<close])
            } else if let hash = value.firstIndex(of: "#") {
                value = value[..<hash].trimmingCharacters(in: .whitespaces)
            }
            try set(key, value)
        }
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public var key: String
    public var value: String
    public var reason: String
    public var description: String { "configuration \(key) = '\(value)': \(reason)" }
}
