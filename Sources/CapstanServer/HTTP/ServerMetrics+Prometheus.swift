import CapstanServices
import Metrics
import Prometheus

extension ServerMetrics {
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
