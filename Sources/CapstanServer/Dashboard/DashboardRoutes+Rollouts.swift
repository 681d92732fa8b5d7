import CapstanModel
import CapstanServices
import Hummingbird

/// The dashboard's rollout page: its waves and each agent's deployment, with pause, resume and
/// abort behind a confirmation (form posts, so the same-origin check protects them).
extension DashboardRoutes {
    static let rolloutActions: [(action: String, verb: String, explanation: String)] = [
        ("pause", "Pause", "No further wave starts until it is resumed; deployments already sent run on."),
        ("resume", "Resume", "The next wave starts once the current one has succeeded and its pause has passed."),
        ("abort", "Abort", "Deployments not yet started are cancelled for good; those running finish."),
    ]

    func registerRollouts(on router: RouterGroup<CapstanRequestContext>) {
        router.get("rollouts/:id") { request, context in
            try await signedIn(context) { principal in
                let rollout = try await deploy.rollout(id: context.parameters.require("id"), by: principal)
                return page("rollout", title: "Rollout \(rollout.id)", rolloutView(rollout), actor: principal)
            }
        }
        for (action, verb, explanation) in Self.rolloutActions {
            router.get("rollouts/:id/\(action)") { request, context in
                try await signedIn(context) { principal in
                    let id = try context.parameters.require("id")
                    return page(
                        "confirm", title: "\(verb) rollout",
                        [
                            "question": "\(verb) rollout \(id)?", "explanation": explanation,
                            "action": "/rollouts/\(id)/\(action)", "button": "Yes, \(action) it",
                            "back": "/rollouts/\(id)",
                        ], actor: principal)
                }
            }
            router.post("rollouts/:id/\(action)") { request, context in
                try await signedInForm(request, context) { principal, _ in
                    let id = try context.parameters.require("id")
                    switch action {
                    case "pause": _ = try await deploy.pauseRollout(id: id, by: principal)
                    case "resume": _ = try await deploy.resumeRollout(id: id, by: principal)
                    default: _ = try await deploy.abortRollout(id: id, by: principal)
                    }
                    return Self.redirect("/rollouts/\(id)")
                }
            }
        }
    }

    private func rolloutView(_ rollout: RolloutInfo) -> [String: Any] {
        let waves = rollout.waves.enumerated().map { index, wave -> [String: Any] in
            [
                "number": index + 1, "current": index == rollout.currentWave && !rollout.state.isFinal,
                "members": wave.map { member in
                    Self.present([
                        "agent": member.agent, "deployment": member.deployment, "index": member.index,
                        "status": member.held ? "Held" : member.status.rawValue, "reason": member.reason,
                        "started": Self.time(member.startedOn), "finished": Self.time(member.finishedOn),
                    ])
                },
            ]
        }
        return Self.present([
            "id": rollout.id, "state": rollout.state.rawValue, "wave": rollout.currentWave + 1,
            "waveCount": rollout.waves.count, "waves": waves, "maxFailures": rollout.maxFailures,
            "pause": rollout.pause?.description, "nextWave": rollout.nextWaveAt.map { Self.time($0) },
            "reason": rollout.reason, "created": Self.time(rollout.createdOn), "createdBy": rollout.createdBy,
            "canPause": rollout.state == .running, "canResume": rollout.state == .paused,
            "canAbort": !rollout.state.isFinal,
        ])
    }
}
