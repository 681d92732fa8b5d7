import Foundation

/// moto's S3-compatible server on a free loopback port, for the test that starts it. With
/// `authenticated`, moto checks every request's signature against an IAM user's key created at
/// start (its first three requests are the unauthenticated setup), so a wrong signature fails.
public final class S3Server: @unchecked Sendable {
    public let port: Int
    public let endpoint: String
    public let accessKey: String
    public let secretKey: String
    public let logPath: String
    private let process: Process

    /// Starts the server and creates `buckets`. Fails, never skips, when moto is missing
    /// (`pip install 'moto[server]'`; scripts/test installs it).
    public init(buckets: [String], authenticated: Bool = true, in directory: TemporaryDirectory) throws {
        port = try FreePort.find()
        endpoint = "http://127.0.0.1:\(port)"
        logPath = directory.sub("moto-\(port).log")
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let launcher = directory.sub("moto-\(port).py")
        try Self.launcher.write(toFile: launcher, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", launcher, "-H", "127.0.0.1", "-p", String(port)]
        var environment = ProcessInfo.processInfo.environment
        if authenticated { environment["INITIAL_NO_AUTH_ACTION_COUNT"] = "3" }
        process.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        ProcessWatchdog.killWhenTestsEnd(process.processIdentifier)
        let deadline = Date().addingTimeInterval(60)
        while true {
            if !process.isRunning {
                throw TestFailure(
                    "moto's server exited: \(Self.read(logPath)); install it with pip install 'moto[server]'")
            }
            if try ProcessRunner.run(["curl", "-s", "-o", "/dev/null", "\(endpoint)/moto-api/"]).status == 0 { break }
            guard Date() < deadline else { throw TestFailure("moto's server did not start: \(Self.read(logPath))") }
            usleep(100_000)
        }
        let script = directory.sub("moto-setup-\(port).py")
        try Self.setupScript.write(toFile: script, atomically: true, encoding: .utf8)
        let output = try ProcessRunner.run(["python3", script, endpoint] + buckets, check: true).stdout
        guard let object = try JSONSerialization.jsonObject(with: output) as? [String: String],
            let accessKey = object["accessKey"], let secretKey = object["secretKey"]
        else { throw TestFailure("moto setup printed \(String(decoding: output, as: UTF8.self))") }
        self.accessKey = accessKey
        self.secretKey = secretKey
    }

    /// The environment a `capstan serve` using this store needs.
    public var environment: [String: String] {
        ["AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey]
    }

    public func blobStoreURL(bucket: String, prefix: String = "") -> String {
        "s3://\(bucket)\(prefix.isEmpty ? "" : "/" + prefix)?endpoint=\(endpoint)&region=us-east-1"
    }

    /// Object keys under `prefix` of `bucket`, read with boto3 (so through moto's own view).
    public func keys(bucket: String, prefix: String = "") throws -> [String] {
        let script = """
            import boto3, sys
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',
                              aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
            for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[4], Prefix=sys.argv[5]):
                for item in page.get('Contents', []):
                    print(item['Key'])
            """
        return try ProcessRunner.run(
            ["python3", "-c", script, endpoint, accessKey, secretKey, bucket, prefix], check: true
        ).stdoutString.split(separator: "\n").map(String.init)
    }

    /// SIGKILL: the server keeps nothing worth a clean shutdown, and a test process may hand its
    /// children a blocked SIGTERM.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    deinit { stop() }

    private static func read(_ path: String) -> String {
        String((try? String(contentsOfFile: path, encoding: .utf8))?.suffix(2000) ?? "")
    }

    /// moto's server, checking signatures over the request as it was sent: moto recomputes them
    /// from a URL whose query werkzeug has decoded (`prefix=a%2Fb` becomes `prefix=a/b`), so that any
    /// correctly signed request with a '/' in a query parameter fails, boto3's own ListObjectsV2
    /// with a prefix included. A wrong signature still fails.
    static let launcher = """
        import sys
        from urllib.parse import urlparse
        from moto.core import responses

        original = responses.BaseResponse.setup_class

        def setup_class(self, request, full_url, headers, use_raw_body=False):
            original(self, request, full_url, headers, use_raw_body=use_raw_body)
            raw = getattr(request, "environ", {}).get("RAW_URI")
            if raw:
                parts = urlparse(self.uri)
                self.uri = f"{parts.scheme}://{parts.netloc}{raw}"

        responses.BaseResponse.setup_class = setup_class
        from moto.server import main
        main(sys.argv[1:])
        """

    /// Creates a user allowed everything on S3 and its access key, then the buckets with that key.
    static let setupScript = """
        import boto3, json, sys
        endpoint = sys.argv[1]
        iam = boto3.client('iam', endpoint_url=endpoint, region_name='us-east-1',
                           aws_access_key_id='setup', aws_secret_access_key='setup')
        iam.create_user(UserName='capstan')
        iam.put_user_policy(UserName='capstan', PolicyName='s3', PolicyDocument=json.dumps(
            {'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow', 'Action': 's3:*', 'Resource': '*'}]}))
        key = iam.create_access_key(UserName='capstan')['AccessKey']
        s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                          aws_access_key_id=key['AccessKeyId'], aws_secret_access_key=key['SecretAccessKey'])
        for bucket in sys.argv[2:]:
            s3.create_bucket(Bucket=bucket)
        print(json.dumps({'accessKey': key['AccessKeyId'], 'secretKey': key['SecretAccessKey']}))
        """
}
