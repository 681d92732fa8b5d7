import CapstanModel
import CapstanStorage
import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// The server's metrics, recorded through swift-metrics so that whichever backend `capstan serve`
/// bootstrapped (Prometheus) receives them; with none bootstrapped they cost next to nothing.
enum ServerMetrics {
    static let agentsConnected = "capstan_agents_connected"
    static let deployments = "capstan_deployments"
    static let deploymentsFinished = "capstan_deployments_finished_total"
    static let deploymentDuration = "capstan_deployment_duration_seconds"
    static let cacheRequests = "capstan_cache_requests_total"
    static let cacheBytesServed = "capstan_cache_bytes_served_total"
    static let uploadsRejected = "capstan_uploads_rejected_total"

    /// A deployment reached a final status; its duration counts from when its agent took it.
    static func deploymentFinished(_ record: DeploymentRecord) {
        Counter(label: deploymentsFinished, dimensions: [("status", record.status.rawValue)]).increment()
        guard let started = record.startedAt, let finished = record.finishedAt else { return }
        let nanoseconds = max(0, finished.timeIntervalSince(started)) * 1_000_000_000
        CoreMetrics.Timer(label: deploymentDuration, dimensions: [("status", record.status.rawValue)])
            .recordNanoseconds(Int64(nanoseconds))
    }

    /// A narinfo lookup (`hit` or `miss`) or a NAR download.
    static func cacheRequest(kind: String, result: String) {
        Counter(label: cacheRequests, dimensions: [("kind", kind), ("result", result)]).increment()
    }

    static func bytesServed(kind: String, _ count: Int) {
        Counter(label: cacheBytesServed, dimensions: [("kind", kind)]).increment(by: count)
    }

    static func uploadRejected(reason: String) {
        Counter(label: uploadsRejected, dimensions: [("reason", reason)]).increment()
    }

    /// Gauges read from the current state rather than kept up by events: the store's counts cover
    /// every replica, the hub's count this one.
    static func refreshGauges(agentsConnected connected: Int, deploymentCounts: [DeploymentStatus: Int]) {
        Gauge(label: agentsConnected).record(connected)
        for (status, count) in deploymentCounts {
            Gauge(label: deployments, dimensions: [("status", status.rawValue)]).record(count)
        }
    }

    /// Sets up the Prometheus backend for the whole process; call once, before the server opens.
    /// Deployments take seconds to minutes, so their histogram gets buckets of that order.
    static func bootstrapPrometheus() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[deploymentDuration] = [
            .seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120), .seconds(300),
            .seconds(600), .seconds(1800), .seconds(3600),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
