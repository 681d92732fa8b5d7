import Hummingbird

public struct CapstanRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    /// Bodies that are collected whole (JSON, narinfo) stay small; NARs are streamed instead.
    public var maxUploadSize: Int { 8 << 20 }
}
