import ArgumentParser
import CapstanClient
import Foundation

struct UseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "use",
        abstract: "Print (or add to nix.conf) the settings that make Nix substitute from a cache."
    )

    @OptionGroup var client: ClientOptions
    @Argument(help: "The cache to use.") var cache: String
    @Flag(name: .customLong("write"), help: "Append the settings to nix.conf (and the netrc line to the netrc file).")
    var writeConfig = false
    @Option(help: "nix.conf to write with --write.") var nixConf: String = "/etc/nix/nix.conf"
    @Option(help: "netrc file to write with --write, for a private cache.") var netrcFile: String = "/etc/nix/netrc"

    func run() async throws {
        let info = try await client.makeClient().cache(named: cache)
        var confLines = [
            "extra-substituters = \(info.url)",
            "extra-trusted-public-keys = \(info.publicKey)",
        ]
        var netrcLine: String?
        if !info.isPublic {
            let host = URLComponents(string: info.url)?.host ?? "127.0.0.1"
            netrcLine = "machine \(host) login capstan password \(client.resolvedToken ?? "<read or push token>")"
            confLines.append("netrc-file = \(netrcFile)")
        }
        guard writeConfig else {
            print("# nix.conf")
            confLines.forEach { print($0) }
            if let netrcLine {
                print("# \(netrcFile) (the token as password)")
                print(netrcLine)
            }
            return
        }
        try append(confLines.joined(separator: "\n") + "\n", to: nixConf, mode: 0o644)
        if let netrcLine { try append(netrcLine + "\n", to: netrcFile, mode: 0o600) }
        printError("Added cache '\(cache)' to \(nixConf)\(netrcLine == nil ? "" : " and \(netrcFile)").")
    }

    private func append(_ text: String, to path: String, mode: mode_t) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND, mode)
        guard fd >= 0 else { throw ValidationError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else {
            throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
