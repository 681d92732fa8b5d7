import CapstanModel
import CapstanStorage
import CoreMetrics
import Foundation
import Metrics

/// The server's metrics, recorded through swift-metrics so that whichever backend `capstan serve`
/// bootstrapped (Prometheus) receives them; with none bootstrapped they cost next to nothing.
package enum ServerMetrics {
    package static let agentsConnected = "capstan_agents_connected"
    package static let deployments = "capstan_deployments"
    package static let deploymentsFinished = "capstan_deployments_finished_total"
    package static let deploymentDuration = "capstan_deployment_duration_seconds"
    package static let cacheRequests = "capstan_cache_requests_total"
    package static let cacheBytesServed = "capstan_cache_bytes_served_total"
    package static let uploadsRejected = "capstan_uploads_rejected_total"

    /// A deployment reached a final status; its duration counts from when its agent took it.
    package static func deploymentFinished(_ record: DeploymentRecord) {
        Counter(label: deploymentsFinished, dimensions: [("status", record.status.rawValue)]).increment()
        guard let started = record.startedAt, let finished = record.finishedAt else { return }
        let nanoseconds = max(0, finished.timeIntervalSince(started)) * 1_000_000_000
        CoreMetrics.Timer(label: deploymentDuration, dimensions: [("status", record.status.rawValue)])
            .recordNanoseconds(Int64(nanoseconds))
    }

    /// A narinfo lookup (`hit` or `miss`) or a NAR download.
    package static func cacheRequest(kind: String, result: String) {
        Counter(label: cacheRequests, dimensions: [("kind", kind), ("result", result)]).increment()
    }

    package static func bytesServed(kind: String, _ count: Int) {
        Counter(label: cacheBytesServed, dimensions: [("kind", kind)]).increment(by: count)
    }

    package static func uploadRejected(reason: String) {
        Counter(label: uploadsRejected, dimensions: [("reason", reason)]).increment()
    }

    /// Gauges read from the current state rather than kept up by events: the store's counts cover
    /// every replica, the hub's count this one.
    package static func refreshGauges(agentsConnected connected: Int, deploymentCounts: [DeploymentStatus: Int]) {
        Gauge(label: agentsConnected).record(connected)
        for (status, count) in deploymentCounts {
            Gauge(label: deployments, dimensions: [("status", status.rawValue)]).record(count)
        }
    }
}
