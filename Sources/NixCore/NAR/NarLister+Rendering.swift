extension NarLister {
    /// The listing as `nix nar ls --json -R` prints it: nested objects, files with `size`,
    /// `executable` and `narOffset`, symlinks with `target`.
    public static func json(_ entries: [NarEntry]) -> String {
        var out = ""
        var index = 0
        while index < entries.count { appendJSON(entries, &index, into: &out) }
        return out
    }

    private static func appendJSON(_ entries: [NarEntry], _ index: inout Int, into out: inout String) {
        let entry = entries[index]
        index += 1
        switch entry.kind {
        case .directory:
            out += "{\"type\":\"directory\",\"entries\":{"
            var first = true
            while index < entries.count, entries[index].path.depth == entry.path.depth + 1 {
                if !first { out += "," }
                first = false
                out += jsonString(entries[index].path.name ?? []) + ":"
                appendJSON(entries, &index, into: &out)
            }
            out += "}}"
        case .regular:
            out += "{\"type\":\"regular\",\"size\":\(entry.size)"
            if entry.executable { out += ",\"executable\":true" }
            if let offset = entry.contentsOffset { out += ",\"narOffset\":\(offset)" }
            out += "}"
        case .symlink:
            out += "{\"type\":\"symlink\",\"target\":" + jsonString(entry.target ?? []) + "}"
        }
    }

    /// A JSON string literal of `bytes` decoded as UTF-8 (invalid sequences become U+FFFD).
    static func jsonString(_ bytes: [UInt8]) -> String {
        var out = "\""
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// One line per entry in the form of `nix nar ls -R`: `./a/b`, or with `long` the mode, the size
    /// and `-> target` for symlinks. The root directory itself is not listed; a lone root file is `.`.
    public static func lines(_ entries: [NarEntry], long: Bool) -> [String] {
        entries.compactMap { entry in
            if entry.path.isRoot && entry.kind == .directory { return nil }
            let name = entry.path.isRoot ? "." : "./" + entry.path.relativePath
            guard long else { return name }
            let size = String(entry.size)
            var line = entry.modeString + " " + String(repeating: " ", count: max(0, 20 - size.count)) + size + " " + name
            if let target = entry.target { line += " -> " + String(decoding: target, as: UTF8.self) }
            return line
        }
    }
}
