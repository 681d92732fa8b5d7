import Foundation

/// A URL of a workspace that is told when its deployments finish.
public struct WebhookRecord: Sendable, Equatable {
    public var id: String
    public var workspaceID: String
    public var url: String
    /// The HMAC key; kept as given, since signing needs it.
    public var secret: String?
    public var createdAt: Date
    public var createdBy: String?

    public init(id: String, workspaceID: String, url: String, secret: String?, createdAt: Date, createdBy: String?) {
        self.id = id
        self.workspaceID = workspaceID
        self.url = url
        self.secret = secret
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// One attempt to deliver an event to a webhook, and what came of it.
public struct WebhookDeliveryRecord: Sendable, Equatable {
    public var id: String
    public var webhookID: String
    public var deploymentID: String
    public var event: String
    public var attempt: Int
    public var time: Date
    public var statusCode: Int?
    public var error: String?
    public var delivered: Bool

    public init(
        id: String = UUID().uuidString.lowercased(), webhookID: String, deploymentID: String, event: String,
        attempt: Int, time: Date, statusCode: Int?, error: String?, delivered: Bool
    ) {
        self.id = id
        self.webhookID = webhookID
        self.deploymentID = deploymentID
        self.event = event
        self.attempt = attempt
        self.time = time
        self.statusCode = statusCode
        self.error = error
        self.delivered = delivered
    }
}
