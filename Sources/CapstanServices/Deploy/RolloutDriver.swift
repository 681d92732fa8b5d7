import Foundation
import Logging

/// Moves rollouts on: when a deployment of one changes (from the event bus, on any replica) and on a
/// periodic sweep, which ends pauses and picks up, after a restart, what a stopped server left running.
public struct RolloutDriver: Sendable {
    let deploy: DeployService
    let events: EventBus
    let sweepInterval: Duration
    let logger: Logger

    public init(deploy: DeployService, events: EventBus, sweepInterval: Duration = .seconds(5), logger: Logger) {
        self.deploy = deploy
        self.events = events
        self.sweepInterval = sweepInterval
        self.logger = logger
    }

    public func run() async {
        let subscription = events.subscribe()
        // The sweep sleeps until the next scheduled wave or the interval, whichever comes first; an
        // event that scheduled a wave wakes it to take the new time into account.
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in subscription {
                    switch event {
                    case .deploymentChanged(_, let id), .deploymentCancelled(_, let id):
                        do {
                            if case .scheduled = try await deploy.advanceRollout(ofDeployment: id) { wake.yield() }
                        } catch {
                            logger.error(
                                "could not advance the rollout of a deployment",
                                metadata: ["deployment": "\(id)", "error": "\(error)"])
                        }
                    case .rolloutChanged:
                        wake.yield()
                    default:
                        continue
                    }
                }
            }
            group.addTask {
                var wakeup = wakeups.makeAsyncIterator()
                while !Task.isCancelled {
                    var delay = sweepInterval
                    do {
                        if let next = try await deploy.sweepRollouts() {
                            delay = min(delay, .milliseconds(max(10, Int64(next.timeIntervalSinceNow * 1000) + 10)))
                        }
                    } catch {
                        logger.error("could not sweep rollouts", metadata: ["error": "\(error)"])
                    }
                    let timer = Task {
                        try? await Task.sleep(for: delay)
                        wake.yield()
                    }
                    guard await wakeup.next() != nil else {
                        timer.cancel()
                        return
                    }
                    timer.cancel()
                }
            }
            await group.next()
            group.cancelAll()
        }
        wake.finish()
    }
}
