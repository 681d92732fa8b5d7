/// The position of an entry inside a NAR: the names from the root down, as raw bytes
/// (Nix file names are bytes, not necessarily UTF-8).
public struct NarPath: Hashable, Sendable, CustomStringConvertible {
    public private(set) var components: [[UInt8]]

    public init(components: [[UInt8]] = []) { self.components = components }

    public static let root = NarPath()

    public var isRoot: Bool { components.isEmpty }
    public var depth: Int { components.count }
    /// The last component; `nil` for the root.
    public var name: [UInt8]? { components.last }

    mutating func append(_ name: [UInt8]) { components.append(name) }
    mutating func removeLast() { components.removeLast() }

    /// `a/b/c` relative to the root; empty for the root itself.
    public var relativePath: String {
        components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
    }

    /// `/a/b/c`, the form Nix uses when it names an entry of an archive.
    public var description: String { "/" + relativePath }
}
