import ArgumentParser
import NixCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct NarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nar",
        abstract: "Create, unpack and inspect Nix archives (NAR).",
        subcommands: [Dump.self, Restore.self, List.self]
    )

    struct Dump: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the NAR serialisation of a path to standard output, like 'nix-store --dump'.")

        @Argument(help: "The file, directory or symlink to serialise (a symlink is archived, not followed).")
        var path: String

        func run() async throws {
            try NarWriter().pipelinedDump(path: path) { chunk in try StandardOutput.write(chunk) }
        }
    }

    struct Restore: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Unpack a NAR read from standard input into a new directory, like 'nix-store --restore'.")

        @Argument(help: "Where to create the archive's root; it must not exist yet.")
        var directory: String

        @Option(help: "Reject archives whose entries are nested deeper than this many levels.")
        var maxDepth: Int = NarLimits.default.maxDepth

        func validate() throws {
            guard maxDepth > 0 else { throw ValidationError("--max-depth must be at least 1") }
        }

        func run() async throws {
            try NarRestorer.restore(from: STDIN_FILENO, to: directory, limits: NarLimits(maxDepth: maxDepth))
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls",
            abstract: "List every entry of a NAR file, like 'nix nar ls -R FILE /'.")

        @Argument(help: "The NAR file to list, or '-' for standard input.")
        var file: String

        @Flag(name: .shortAndLong, help: "Show the type and permissions, the size and symlink targets of each entry.")
        var long = false

        @Flag(help: "Print the listing as JSON, nested by directory, as 'nix nar ls --json -R' does.")
        var json = false

        func run() async throws {
            let fd = file == "-" ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CommandFailure("cannot open '\(file)': \(String(cString: strerror(errno)))") }
            defer { if fd != STDIN_FILENO { close(fd) } }
            var parser = NarParser(visitor: NarLister())
            try parser.parse(fileDescriptor: fd)
            if json {
                print(NarLister.json(parser.visitor.entries))
            } else {
                for line in NarLister.lines(parser.visitor.entries, long: long) { print(line) }
            }
        }
    }
}
