import CapstanServices
import CapstanStorage
import Hummingbird
import NIOCore
import Prometheus

/// `/metrics` in Prometheus' text format. Gauges are refreshed from the current state on each scrape.
struct MetricsRoutes: Sendable {
    let registry: PrometheusCollectorRegistry
    let store: CapstanStore
    let hub: AgentHub

    func register(on router: Router<CapstanRequestContext>) {
        router.get("metrics") { _, _ in
            ServerMetrics.refreshGauges(
                agentsConnected: await hub.connectedCount,
                deploymentCounts: try await store.deploymentCounts(workspaceID: nil))
            var buffer: [UInt8] = []
            buffer.reserveCapacity(4096)
            registry.emit(into: &buffer)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer)))
        }
    }
}
