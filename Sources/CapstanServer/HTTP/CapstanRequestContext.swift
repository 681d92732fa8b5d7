import CapstanModel
import CapstanServices
import Foundation
import Hummingbird
import HummingbirdAuth
import HummingbirdWebSocket
import NIOCore

/// The context of every HTTP request: the principal the authentication middleware found, if any.
public struct CapstanRequestContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Principal?
    /// The connection's event loop, which streamed bodies wait for between chunks (see `PacedBody`).
    public let eventLoop: any EventLoop
    /// The connection, whose `FileRegionSender` sends NARs from their files (see `FileRegionBody`).
    public let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        identity = nil
        eventLoop = source.channel.eventLoop
        channel = source.channel
    }

    /// Bodies that are collected whole (JSON, narinfo) stay small; NARs are streamed instead.
    public var maxUploadSize: Int { 8 << 20 }

    /// API answers in Capstan's one JSON form: ISO 8601 dates, sorted keys, store paths without `\/`.
    public var responseEncoder: JSONEncoder { .capstan }
}

/// The context of WebSocket upgrades (agents, cachix agents, log viewers), authenticated the same way.
public struct AgentSocketContext: AuthRequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public var identity: Principal?
    /// The connection, which gets its keep-alive once upgraded (see `WebSocketKeepAlive`).
    public let channel: any Channel

    public init(source: Source) {
        coreContext = .init(source: source)
        webSocket = .init()
        identity = nil
        channel = source.channel
    }
}
