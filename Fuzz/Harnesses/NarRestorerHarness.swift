import NixCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Restores the input into `<scratch>/run/out` next to an empty `<scratch>/run/canary`: whatever
/// the input, nothing appears beside `out` or inside `canary`; an accepted NAR dumps back to
/// exactly the input bytes; a NAR the parser accepts fails to restore only for a limit of the
/// file system (a name longer than it allows), never because an entry already exists.
enum NarRestorerHarness {
    static func run(_ bytes: UnsafeRawBufferPointer, scratch: String) throws -> FuzzVerdict {
        let run = scratch + "/run"
        removeTree(run)
        defer { removeTree(run) }
        guard mkdir(run, 0o700) == 0, mkdir(run + "/canary", 0o700) == 0 else {
            throw FuzzFinding("cannot create \(run): errno \(errno)")
        }
        let out = run + "/out"
        var parser = NarParser(visitor: NarRestorer(target: out))
        var verdict = FuzzVerdict.accepted
        do {
            try parser.feed(bytes)
            try parser.finish()
        } catch let error as NarParseError {
            verdict = .refused(error.description)
        } catch let error as NarRestoreError {
            guard case .system(_, let code) = error.reason, code == ENAMETOOLONG else {
                throw FuzzFinding("restoring into an empty directory failed: \(error)")
            }
            verdict = .refused(error.description)
        }
        let beside = try names(in: run).subtracting(["out", "canary"])
        guard beside.isEmpty else { throw FuzzFinding("restoring wrote outside its target: \(beside.sorted())") }
        guard try names(in: run + "/canary").isEmpty else {
            throw FuzzFinding("restoring wrote into a sibling directory")
        }
        if verdict == .accepted {
            var dumped: [UInt8] = []
            do {
                try NarWriter.dump(path: out) { dumped.append(contentsOf: $0) }
            } catch {
                throw FuzzFinding("cannot dump the restored tree: \(error)")
            }
            guard dumped.elementsEqual(bytes) else {
                throw FuzzFinding(
                    "the restored tree dumps to a different NAR (\(dumped.count) bytes, not \(bytes.count))")
            }
        }
        return verdict
    }

    /// Removes a tree without following any symlink in it.
    static func removeTree(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            unlink(path)
            return
        }
        removeContents(of: fd)
        close(fd)
        rmdir(path)
    }

    /// Empties the directory open at `fd`, by raw names: a NAR's names need not be UTF-8.
    static func removeContents(of fd: Int32) {
        guard let directory = fdopendir(dup(fd)) else { return }
        var names: [[CChar]] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                Array($0.bindMemory(to: CChar.self).prefix { $0 != 0 })
            }
            if name != [46] && name != [46, 46] { names.append(name + [0]) }
        }
        closedir(directory)
        for name in names {
            let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child >= 0 {
                removeContents(of: child)
                close(child)
                unlinkat(fd, name, AT_REMOVEDIR)
            } else {
                unlinkat(fd, name, 0)
            }
        }
    }

    /// Names directly inside `path`.
    static func names(in path: String) throws -> Set<String> {
        guard let directory = opendir(path) else { throw FuzzFinding("cannot list \(path): errno \(errno)") }
        defer { closedir(directory) }
        var found: Set<String> = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(cString: $0.bindMemory(to: CChar.self).baseAddress!)
            }
            if name != "." && name != ".." { found.insert(name) }
        }
        return found
    }
}
