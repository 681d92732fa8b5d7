import CapstanModel
import CapstanServices
import Hummingbird

/// Rollouts: where one stands, and an operator's pause, resume and abort.
struct RolloutRoutes: Sendable {
    let deploy: DeployService

    func register(on router: Router<CapstanRequestContext>) {
        let api = router.group("api/v1")
        api.get("rollouts/:id") { request, context in
            try await deploy.rollout(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
        api.post("rollouts/:id/pause") { request, context in
            try await deploy.pauseRollout(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
        api.post("rollouts/:id/resume") { request, context in
            try await deploy.resumeRollout(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
        api.post("rollouts/:id/abort") { request, context in
            try await deploy.abortRollout(id: context.parameters.require("id"), by: context.requirePrincipal())
        }
    }
}

extension RolloutInfo: ResponseEncodable {}
