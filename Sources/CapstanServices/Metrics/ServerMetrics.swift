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
    package static let narInfoFastPath = "capstan_narinfo_fast_path_total"

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

    /// Counters of the cache's hottest path, made once (after the backend is bootstrapped) and kept.
    package struct CacheCounters: Sendable {
        package let narInfoHits = Counter(
            label: ServerMetrics.cacheRequests, dimensions: [("kind", "narinfo"), ("result", "hit")])
        package let narInfoBytes = Counter(label: ServerMetrics.cacheBytesServed, dimensions: [("kind", "narinfo")])
        package let narInfoFastPath = Counter(label: ServerMetrics.narInfoFastPath)

        package init() {}
    }

    package static func bytesServed(kind: String, _ count: Int) {
        Counter(label: cacheBytesServed, dimensions: [("kind", kind)]).increment(by: count)
    }

    package static func uploadRejected(reason: String) {
        Counter(label: uploadsRejected, dimensions: [("reason", reason)]).increment()
    }

    /// Deployments in each status (see `DeploymentTally`).
    package static func deployments(_ counts: [DeploymentStatus: Int]) {
        for status in DeploymentStatus.allCases {
            Gauge(label: deployments, dimensions: [("status", status.rawValue)]).record(counts[status] ?? 0)
        }
    }

    /// Agents connected to this replica, recorded as they come and go.
    package static func agentsConnected(_ count: Int) {
        Gauge(label: agentsConnected).record(count)
    }

    /// What each metric means, for the `# HELP` lines of the Prometheus text format.
    package static let help: [String: String] = [
        agentsConnected: "Agents connected to this server process.",
        deployments: "Deployments in each status, in every workspace.",
        deploymentsFinished: "Deployments that reached a final status, by that status, counted by this process.",
        deploymentDuration: "Time from an agent taking a deployment to its final status.",
        cacheRequests: "Binary cache requests by kind (narinfo, nar) and result (hit, miss).",
        cacheBytesServed: "Bytes of binary cache responses by kind (narinfo, nar).",
        uploadsRejected: "Cache uploads refused, by reason.",
        narInfoFastPath:
            "Narinfo requests answered from memory on the connection's event loop, before the router (also counted in \(cacheRequests)).",
    ]
}
