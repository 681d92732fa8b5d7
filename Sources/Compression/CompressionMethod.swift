/// A NAR compression as narinfo names it in its `Compression:` field.
public enum CompressionMethod: String, Sendable, CaseIterable, Codable {
    case none
    case zstd
    case xz
    /// Nix's old default; Capstan knows the name but neither reads nor writes it.
    case bzip2

    /// What a narinfo without a `Compression:` field means.
    public static let narInfoDefault: CompressionMethod = .bzip2

    /// Parses a narinfo `Compression:` value; an empty value means `none`, as in Nix.
    public init(narInfoName: String) throws {
        if narInfoName.isEmpty {
            self = .none
            return
        }
        guard let method = CompressionMethod(rawValue: narInfoName) else {
            throw CompressionError(
                codec: narInfoName, kind: .unsupportedMethod,
                message: "unknown compression method \"\(narInfoName)\" (Capstan reads none, zstd and xz)")
        }
        self = method
    }

    /// The one parser of compression names wherever they come from: narinfo's `Compression:`
    /// (`none`, `zstd`, `xz`, `bzip2`, empty for none), HTTP's `Content-Encoding` (`identity`) and the
    /// cachix API (`zst`, in any case).
    public init(parsing name: String) throws {
        switch name.lowercased() {
        case "identity": self = .none
        case "zst": self = .zstd
        case let lowered: try self.init(narInfoName: lowered)
        }
    }

    /// The value of a narinfo's `Compression:` field.
    public var narInfoName: String { rawValue }

    /// The suffix after `.nar` in a NAR file's URL: `nar/<filehash>.nar.zst`.
    public var fileExtension: String {
        switch self {
        case .none: ""
        case .zstd: ".zst"
        case .xz: ".xz"
        case .bzip2: ".bz2"
        }
    }

    public var isSupported: Bool { self != .bzip2 }

    /// A fresh compressor with this method's default level.
    public func makeEncoder() throws -> any StreamCodec {
        switch self {
        case .none: PassthroughCodec()
        case .zstd: try ZstdEncoder()
        case .xz: try XzEncoder()
        case .bzip2: throw unsupported
        }
    }

    /// A fresh decompressor.
    public func makeDecoder() throws -> any StreamCodec {
        switch self {
        case .none: PassthroughCodec()
        case .zstd: try ZstdDecoder()
        case .xz: try XzDecoder()
        case .bzip2: throw unsupported
        }
    }

    /// Compresses all of `data` at once; for small inputs and tests.
    public func compress(_ data: [UInt8]) throws -> [UInt8] {
        try makeEncoder().transform(data)
    }

    /// Decompresses all of `data` at once; for small inputs and tests.
    public func decompress(_ data: [UInt8]) throws -> [UInt8] {
        try makeDecoder().transform(data)
    }

    private var unsupported: CompressionError {
        CompressionError(
            codec: rawValue, kind: .unsupportedMethod,
            message:
                "\(rawValue) NARs are not supported; push with zstd, xz or none (nix copy --to '...?compression=zstd')")
    }
}
