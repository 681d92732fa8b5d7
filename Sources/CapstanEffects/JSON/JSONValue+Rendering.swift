import Foundation

extension JSONValue {
    /// Indented by two spaces, keys sorted, `"key": value` — the layout `hci` writes.
    public func rendered(indent: Int = 2) -> String {
        var output = ""
        write(to: &output, depth: 0, indent: indent)
        return output
    }

    /// One line, keys sorted.
    public var compact: String {
        var output = ""
        write(to: &output, depth: 0, indent: nil)
        return output
    }

    private func write(to output: inout String, depth: Int, indent: Int?) {
        let newline = indent == nil ? "" : "\n"
        let pad = { (level: Int) in String(repeating: " ", count: (indent ?? 0) * level) }
        switch self {
        case .null: output += "null"
        case .bool(let value): output += value ? "true" : "false"
        case .integer(let value): output += String(value)
        case .number(let value):
            output +=
                value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
        case .string(let value): output += Self.quoted(value)
        case .array(let values):
            guard !values.isEmpty else { return output += "[]" }
            output += "[" + newline
            for (index, value) in values.enumerated() {
                output += pad(depth + 1)
                value.write(to: &output, depth: depth + 1, indent: indent)
                output += (index == values.count - 1 ? "" : ",") + newline
            }
            output += pad(depth) + "]"
        case .object(let object):
            guard !object.isEmpty else { return output += "{}" }
            output += "{" + newline
            let keys = object.keys.sorted()
            for (index, key) in keys.enumerated() {
                output += pad(depth + 1) + Self.quoted(key) + (indent == nil ? ":" : ": ")
                object[key]!.write(to: &output, depth: depth + 1, indent: indent)
                output += (index == keys.count - 1 ? "" : ",") + newline
            }
            output += pad(depth) + "}"
        }
    }

    static func quoted(_ string: String) -> String {
        var result = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                result += String(format: "\\u%04x", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
