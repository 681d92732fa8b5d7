/// Which database engine holds Capstan's tables; a few statements differ between them.
public enum DatabaseBackend: String, Sendable, CaseIterable {
    /// A file under the data directory: the embedded default for one server.
    case sqlite
    /// A shared PostgreSQL database: several server replicas can use it at once.
    case postgres
}
