/// Every migration Capstan knows, oldest first. Never edit one that has shipped: add a new one.
///
/// Column types are chosen to mean the same on both backends: TEXT, BIGINT (timestamps are
/// milliseconds since 1970), INTEGER and BOOLEAN (stored as 0/1 by SQLite).
enum Migrations {
    static let all: [Migration] = [initialSchema]

    static let initialSchema = Migration(version: 1, name: "workspaces, tokens, caches, paths") { _ in
        [
            """
            CREATE TABLE workspaces (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE caches (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                name TEXT NOT NULL UNIQUE,
                is_public BOOLEAN NOT NULL,
                key_name TEXT NOT NULL,
                secret_key TEXT NOT NULL,
                public_key TEXT NOT NULL,
                compression TEXT NOT NULL,
                priority INTEGER NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX caches_workspace ON caches (workspace_id)",
            """
            CREATE TABLE tokens (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                kind TEXT NOT NULL,
                cache_id TEXT NULL REFERENCES caches(id) ON DELETE CASCADE,
                agent_id TEXT NULL,
                label TEXT NULL,
                secret_hash TEXT NOT NULL UNIQUE,
                created_at BIGINT NOT NULL,
                last_used_at BIGINT NULL,
                revoked_at BIGINT NULL
            )
            """,
            "CREATE INDEX tokens_workspace ON tokens (workspace_id)",
            """
            CREATE TABLE paths (
                cache_id TEXT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
                hash_part TEXT NOT NULL,
                store_path TEXT NOT NULL,
                nar_hash TEXT NOT NULL,
                nar_size BIGINT NOT NULL,
                file_name TEXT NOT NULL,
                file_hash TEXT NOT NULL,
                file_size BIGINT NOT NULL,
                compression TEXT NOT NULL,
                refs TEXT NOT NULL,
                deriver TEXT NULL,
                sigs TEXT NOT NULL,
                ca TEXT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (cache_id, hash_part)
            )
            """,
            "CREATE INDEX paths_cache_file ON paths (cache_id, file_name)",
            // Blob garbage collection asks whether any cache still uses a file.
            "CREATE INDEX paths_file ON paths (file_name)",
            """
            CREATE TABLE path_references (
                cache_id TEXT NOT NULL,
                referrer TEXT NOT NULL,
                reference TEXT NOT NULL,
                PRIMARY KEY (cache_id, referrer, reference),
                FOREIGN KEY (cache_id, referrer) REFERENCES paths(cache_id, hash_part) ON DELETE CASCADE
            )
            """,
            "CREATE INDEX path_references_reference ON path_references (cache_id, reference)",
        ]
    }
}
