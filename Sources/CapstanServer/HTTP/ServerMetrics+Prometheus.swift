import CapstanServices
import Metrics
import NIOCore
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

    /// The registry in the text format, each metric with its `# HELP` line (swift-metrics has no
    /// place for help texts, so they are added here, before each metric's `# TYPE` line).
    static func exposition(of registry: PrometheusCollectorRegistry) -> ByteBuffer {
        var emitted: [UInt8] = []
        emitted.reserveCapacity(4096)
        registry.emit(into: &emitted)
        var buffer = ByteBuffer()
        buffer.reserveCapacity(emitted.count + 1024)
        for line in emitted.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            let typePrefix = Array("# TYPE ".utf8)
            if line.starts(with: typePrefix) {
                let name = String(
                    decoding: line.dropFirst(typePrefix.count).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                if let text = help[name] { buffer.writeString("# HELP \(name) \(text)\n") }
            }
            buffer.writeBytes(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        // `split` keeps the empty piece after the last newline.
        if emitted.last == UInt8(ascii: "\n") { buffer.moveWriterIndex(to: buffer.writerIndex - 1) }
        return buffer
    }
}
