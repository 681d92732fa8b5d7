import CapstanServices
import CapstanStorage
import Hummingbird

/// `/health`: the process answers. `/ready`: and its database does too.
struct HealthRoutes: Sendable {
    let store: CapstanStore

    func register(on router: Router<CapstanRequestContext>) {
        router.get("health") { _, _ in "ok\n" }
        router.get("ready") { _, _ in
            do {
                try await store.ping()
                return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "ready\n")))
            } catch {
                throw ServiceError(.unavailable, "database unreachable: \(error)")
            }
        }
    }
}
