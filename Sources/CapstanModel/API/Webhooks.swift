import Foundation

public struct CreateWebhookRequest: Codable, Sendable {
    public var url: String
    /// When set, each delivery carries `X-Capstan-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    public var secret: String?

    public init(url: String, secret: String? = nil) {
        self.url = url
        self.secret = secret
    }
}

/// A webhook as listed: never its secret, only whether it has one.
public struct WebhookInfo: Codable, Sendable, Equatable {
    public var id: String
    public var url: String
    public var signed: Bool
    public var createdAt: Date
    public var createdBy: String?

    public init(id: String, url: String, signed: Bool, createdAt: Date, createdBy: String?) {
        self.id = id
        self.url = url
        self.signed = signed
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// One attempt to deliver an event to a webhook.
public struct WebhookDelivery: Codable, Sendable, Equatable {
    public var id: String
    public var webhookID: String
    public var deploymentID: String
    public var event: String
    /// 1 for the first try, 2 for the first retry, …
    public var attempt: Int
    public var time: Date
    public var statusCode: Int?
    public var error: String?
    public var delivered: Bool

    public init(
        id: String, webhookID: String, deploymentID: String, event: String, attempt: Int, time: Date,
        statusCode: Int?, error: String?, delivered: Bool
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

/// The JSON body a webhook receives.
public struct WebhookPayload: Codable, Sendable, Equatable {
    public static let signatureHeader = "X-Capstan-Signature"

    /// `deployment.finished`.
    public var event: String
    public var deployment: DeploymentInfo

    public init(event: String, deployment: DeploymentInfo) {
        self.event = event
        self.deployment = deployment
    }
}
