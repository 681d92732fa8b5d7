import CapstanModel
import Hummingbird

/// `/api/v1/webhooks`: a workspace's webhooks and their delivery attempts (admin tokens).
struct WebhookRoutes: Sendable {
    let webhooks: WebhookService
    let auth: Authenticator

    func register(on router: Router<CapstanRequestContext>) {
        let api = router.group("api/v1")
        api.get("webhooks") { request, _ in
            try await webhooks.list(by: auth.requirePrincipal(for: request))
        }
        api.post("webhooks") { request, context in
            let principal = try await auth.requirePrincipal(for: request)
            let body = try await request.decode(as: CreateWebhookRequest.self, context: context)
            return EditedResponse(status: .created, response: try await webhooks.add(body, by: principal))
        }
        api.delete("webhooks/:id") { request, context in
            try await webhooks.remove(id: context.parameters.require("id"), by: auth.requirePrincipal(for: request))
            return HTTPResponse.Status.noContent
        }
        api.get("webhooks/deliveries") { request, _ in
            let query = request.uri.queryParameters
            return try await webhooks.deliveries(
                webhookID: query["webhook"].map(String.init), limit: query["limit"].flatMap { Int($0) } ?? 100,
                by: auth.requirePrincipal(for: request))
        }
    }
}

extension WebhookInfo: ResponseEncodable {}
extension WebhookDelivery: ResponseEncodable {}
