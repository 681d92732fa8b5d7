import Foundation

/// Toy store paths built with the real `nix-build`, unique per call so every test starts fresh.
public enum NixFixtures {
    /// Builds a closure of three paths (top → mid → dep) and returns them, top first.
    /// `payloadBytes` of random data in `dep` makes the NAR as large as a test needs.
    public static func buildClosure(in directory: String, payloadBytes: Int = 100_000) throws -> [String] {
        let nonce = UUID().uuidString.lowercased()
        let expression = """
            let
              mk = name: script: derivation {
                inherit name;
                system = builtins.currentSystem;
                builder = "/bin/sh";
                PATH = "/usr/bin:/bin";
                args = [ "-c" script ];
              };
              dep = mk "capstan-dep" ''
                mkdir -p $out/lib $out/bin
                echo ${nonce} > $out/lib/nonce
                head -c \(payloadBytes) /dev/urandom > $out/lib/payload
                printf '#!/bin/sh\\necho hello\\n' > $out/bin/hello
                chmod +x $out/bin/hello
                ln -s ../lib/nonce $out/bin/link
              '';
              mid = mk "capstan-mid" ''
                mkdir -p $out
                echo ${dep} > $out/dep-path
                ln -s ${dep}/bin/hello $out/hello
              '';
            in mk "capstan-top" ''
              mkdir -p $out
              echo ${mid} > $out/mid-path
              echo ${nonce} > $out/nonce
            ''
            """
        let file = (directory as NSString).appendingPathComponent("closure-\(nonce).nix")
        try expression.write(toFile: file, atomically: true, encoding: .utf8)
        let top = try ProcessRunner.nix(["nix-build", "--no-out-link", file]).stdoutString
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return try closure(of: top)
    }

    /// The closure of a path, the path itself first.
    public static func closure(of path: String) throws -> [String] {
        let all = try ProcessRunner.nix(["nix-store", "-qR", path]).stdoutString.split(separator: "\n").map(String.init)
        return [path] + all.filter { $0 != path }
    }

    /// Removes paths from the local store so that realising them must substitute.
    public static func delete(_ paths: [String]) throws {
        try ProcessRunner.nix(["nix-store", "--delete"] + paths)
        for path in paths where FileManager.default.fileExists(atPath: path) {
            throw TestFailure("\(path) is still in the store after nix-store --delete")
        }
    }

    public static func isValid(_ path: String) -> Bool {
        (try? ProcessRunner.run(
            ["nix-store", "--check-validity", path], environment: TestEnvironment.nixEnvironment))?.status == 0
    }
}
