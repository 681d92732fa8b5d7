import Foundation

/// The bubblewrap sandbox an effect runs in: `/nix/store` and the host's system directories read-only,
/// `/build` writable and the working directory, `/secrets` read-only, a fresh `/etc`, the host's network,
/// and an unprivileged user (uid 1000) even when Capstan runs as root.
public struct EffectSandbox: Sendable {
    /// Host directories with programs and libraries, visible read-only so that effects built
    /// without nixpkgs can use the host's tools (`/bin/sh`, `/usr/bin`).
    public static let hostSystemDirectories = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt"]
    /// Files copied from the host's /etc into the sandbox's own.
    static let hostEtcFiles = [
        "resolv.conf", "hosts", "nsswitch.conf", "host.conf", "services", "protocols", "ld.so.cache", "ld.so.conf",
        "localtime", "ssl", "ca-certificates", "ca-certificates.conf",
    ]

    public static let buildDirectory = "/build"
    public static let secretsFile = "/secrets/secrets.json"
    public static let uid = 1000
    public static let gid = 1000

    /// The host directory holding `build/`, `secrets/` and `etc/` for one run.
    public let root: String
    public let bwrap: String

    public init(root: String, bwrap: String = "bwrap") {
        self.root = root
        self.bwrap = bwrap
    }

    var hostBuild: String { root + "/build" }
    var hostSecrets: String { root + "/secrets" }
    var hostEtc: String { root + "/etc" }

    /// Creates the directories and files the sandbox binds.
    public func populate(secrets: [String: Secret]) throws {
        let fm = FileManager.default
        try fm.createDirectory(
            atPath: hostBuild + "/home", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(hostBuild, 0o700)
        try fm.createDirectory(atPath: hostSecrets, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: hostEtc, withIntermediateDirectories: true)
        let secretsJSON = JSONValue.object(secrets.mapValues(\.json)).rendered() + "\n"
        let secretsPath = hostSecrets + "/secrets.json"
        guard
            fm.createFile(atPath: secretsPath, contents: Data(secretsJSON.utf8), attributes: [.posixPermissions: 0o400])
        else { throw EffectError.sandbox("cannot write \(secretsPath)") }
        for name in Self.hostEtcFiles where fm.fileExists(atPath: "/etc/" + name) {
            _ = try? fm.copyItem(atPath: "/etc/" + name, toPath: hostEtc + "/" + name)
        }
        let passwd = """
            root:x:0:0:root:/build:/noshell
            nixbld:x:\(Self.uid):\(Self.gid):Effect user:/build/home:/noshell
            nobody:x:65534:65534:Nobody:/:/noshell

            """
        let group = "root:x:0:\nnixbld:x:\(Self.gid):\nnogroup:x:65534:\n"
        try passwd.write(toFile: hostEtc + "/passwd", atomically: true, encoding: .utf8)
        try group.write(toFile: hostEtc + "/group", atomically: true, encoding: .utf8)
        try "127.0.0.1 localhost\n::1 localhost\n".write(
            toFile: hostEtc + "/hosts", atomically: false, encoding: .utf8)
        if fm.fileExists(atPath: "/etc/hosts") {
            try? fm.removeItem(atPath: hostEtc + "/hosts")
            try? fm.copyItem(atPath: "/etc/hosts", toPath: hostEtc + "/hosts")
        }
    }

    /// The command line that runs `derivation`'s builder inside the sandbox.
    public func command(for derivation: EffectDerivation, environment: [String: String]) -> [String] {
        var arguments = [
            bwrap, "--unshare-user", "--uid", String(Self.uid), "--gid", String(Self.gid),
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--hostname", "effect",
        ]
        let fm = FileManager.default
        for directory in Self.hostSystemDirectories {
            guard let attributes = try? fm.attributesOfItem(atPath: directory) else { continue }
            if attributes[.type] as? FileAttributeType == .typeSymbolicLink,
                let target = try? fm.destinationOfSymbolicLink(atPath: directory)
            {
                arguments += ["--symlink", target, directory]
            } else {
                arguments += ["--ro-bind", directory, directory]
            }
        }
        arguments += [
            "--ro-bind", "/nix/store", "/nix/store",
            "--bind", hostBuild, Self.buildDirectory,
            "--ro-bind", hostSecrets, "/secrets",
            "--bind", hostEtc, "/etc",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            "--chdir", Self.buildDirectory,
            "--clearenv",
        ]
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            arguments += ["--setenv", key, value]
        }
        return arguments + ["--", derivation.builder] + derivation.arguments
    }

    /// The effect's environment: its derivation attributes, then what every effect gets.
    public static func environment(for derivation: EffectDerivation) -> [String: String] {
        var environment = derivation.environment
        if environment["PATH"] == nil { environment["PATH"] = "/path-not-set" }
        let fixed = [
            "IN_HERCULES_CI_EFFECT": "true",
            "HERCULES_CI_SECRETS_JSON": secretsFile,
            "HOME": buildDirectory + "/home",
            "TMPDIR": buildDirectory, "TMP": buildDirectory, "TEMP": buildDirectory, "TEMPDIR": buildDirectory,
            "NIX_BUILD_TOP": buildDirectory,
            "PWD": buildDirectory,
            "NIX_LOG_FD": "2",
            "TERM": "dumb",
        ]
        environment.merge(fixed) { $1 }
        return environment
    }
}
