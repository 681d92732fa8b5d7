import CapstanModel
import CapstanServices
import Hummingbird

/// `/api/v1/webhooks`: a workspace's webhooks and their delivery attempts (admin tokens).
struct WebhookRoutes: Sendable {
    let webhooks: WebhookService

    func register(on router: Router<CapstanRequestContext>) {
        let api = router.group("api/v1")
        api.get("webhooks") { request, context in
            try await webhooks.list(by: context.requirePrincipal())
        }
        api.post("webhooks") { request, context in
            let principal = try context.requirePrincipal()
            let body = try await request.decode(as: CreateWebhookRequest.self, context: context)
            return EditedResponse(status: .created, response: try await webhooks.add(body, by: principal))
        }
        api.delete("webhooks/:id") { request, context in
            try await webhooks.remove(id: context.parameters.require("id"), by: context.requirePrincipal())
            return HTTPResponse.Status.noContent
        }
        api.get("webhooks/deliveries") { request, context in
            let query = request.uri.queryParameters
            return try await webhooks.deliveries(
                webhookID: query["webhook"].map(String.init), limit: query["limit"].flatMap { Int($0) } ?? 100,
                by: context.requirePrincipal())
        }
    }
}

extension WebhookInfo: ResponseEncodable {}
extension WebhookDelivery: ResponseEncodable {}
