import Foundation

/// Runs the built `capstan` binary against a server, as a user would.
public struct CapstanCLI: Sendable {
    public var url: String
    public var token: String?

    public init(url: String, token: String?) {
        self.url = url
        self.token = token
    }

    @discardableResult
    public func run(_ arguments: [String], input: Data? = nil, check: Bool = true) throws -> ProcessResult {
        var env = TestEnvironment.nixEnvironment
        env["CAPSTAN_URL"] = url
        if let token { env["CAPSTAN_TOKEN"] = token } else { env.removeValue(forKey: "CAPSTAN_TOKEN") }
        return try ProcessRunner.run(
            [TestEnvironment.capstanBinary] + arguments, environment: env, input: input, check: check)
    }

    public func with(token: String?) -> CapstanCLI { CapstanCLI(url: url, token: token) }

    /// Creates a cache and returns its public key.
    public func createCache(_ name: String, public isPublic: Bool = true) throws -> String {
        let output = try run(["cache", "create", name, "--json"] + (isPublic ? ["--public"] : [])).stdout
        let object = try JSONSerialization.jsonObject(with: output) as? [String: Any]
        guard let key = object?["publicKey"] as? String else { throw TestFailure("no publicKey in \(output)") }
        return key
    }

    public func createToken(kind: String, cache: String? = nil) throws -> String {
        var args = ["token", "create", "--kind", kind]
        if let cache { args += ["--cache", cache] }
        return try run(args).stdoutString.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Plain HTTP through curl, for checking what Nix and other clients see.
public enum HTTP {
    public struct Answer: Sendable {
        public var status: Int
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public static func request(
        _ method: String, _ url: String, token: String? = nil, headers: [String] = [], bodyFile: String? = nil
    ) throws -> Answer {
        let out = NSTemporaryDirectory() + "capstan-http-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: out) }
        var args = ["curl", "-s", "-X", method, "-o", out, "-w", "%{http_code}"]
        if method == "HEAD" { args = ["curl", "-s", "-I", "-o", out, "-w", "%{http_code}"] }
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        for header in headers { args += ["-H", header] }
        if let bodyFile { args += ["--data-binary", "@\(bodyFile)"] }
        args.append(url)
        let result = try ProcessRunner.run(args, check: true)
        let body = (try? Data(contentsOf: URL(fileURLWithPath: out))) ?? Data()
        return Answer(status: Int(result.stdoutString) ?? 0, body: body)
    }
}
