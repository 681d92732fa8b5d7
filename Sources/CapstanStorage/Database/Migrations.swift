/// Every migration Capstan knows, oldest first. Never edit one that has shipped: add a new one.
///
/// Column types are chosen to mean the same on both backends: TEXT, BIGINT (timestamps are
/// milliseconds since 1970), INTEGER and BOOLEAN (stored as 0/1 by SQLite).
enum Migrations {
    static let all: [Migration] = [
        initialSchema, deployments, operators, activation, cacheLifecycle, cacheNamesByWorkspace, pendingUploads,
        rollouts, agentRebootState, pendingUploadsSummed, deploymentsByActivation,
    ]

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

    /// Agents, their deployments and the deployments' logs.
    static let deployments = Migration(version: 2, name: "agents, deployments, deployment logs") { _ in
        [
            """
            CREATE TABLE agents (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                name TEXT NOT NULL,
                cache_id TEXT NULL REFERENCES caches(id) ON DELETE SET NULL,
                system TEXT NULL,
                version TEXT NULL,
                current_store_path TEXT NULL,
                last_seen BIGINT NULL,
                created_at BIGINT NOT NULL,
                UNIQUE (workspace_id, name)
            )
            """,
            // Deleting a cache sets agents.cache_id to NULL; the index keeps that from scanning all agents.
            "CREATE INDEX agents_cache ON agents (cache_id)",
            """
            CREATE TABLE deployments (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
                idx INTEGER NOT NULL,
                store_path TEXT NOT NULL,
                rollback_script TEXT NULL,
                status TEXT NOT NULL,
                reason TEXT NULL,
                rolled_back BOOLEAN NOT NULL,
                closure_size BIGINT NULL,
                created_at BIGINT NOT NULL,
                started_at BIGINT NULL,
                finished_at BIGINT NULL,
                created_by TEXT NULL,
                activation_id TEXT NULL,
                UNIQUE (agent_id, idx)
            )
            """,
            "CREATE INDEX deployments_agent_status ON deployments (agent_id, status)",
            "CREATE INDEX deployments_workspace_created ON deployments (workspace_id, created_at)",
            """
            CREATE TABLE deployment_logs (
                deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
                seq INTEGER NOT NULL,
                time BIGINT NOT NULL,
                line TEXT NOT NULL,
                PRIMARY KEY (deployment_id, seq)
            )
            """,
        ]
    }

    /// What operators see and are told: the audit log, webhooks and their deliveries, dashboard sessions.
    static let operators = Migration(version: 3, name: "audit events, webhooks, dashboard sessions") { _ in
        [
            """
            CREATE TABLE audit_events (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                time BIGINT NOT NULL,
                actor TEXT NULL,
                actor_token_id TEXT NULL,
                action TEXT NOT NULL,
                target TEXT NULL,
                detail TEXT NULL
            )
            """,
            "CREATE INDEX audit_events_workspace_time ON audit_events (workspace_id, time)",
            """
            CREATE TABLE webhooks (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                url TEXT NOT NULL,
                secret TEXT NULL,
                created_at BIGINT NOT NULL,
                created_by TEXT NULL
            )
            """,
            "CREATE INDEX webhooks_workspace ON webhooks (workspace_id)",
            """
            CREATE TABLE webhook_deliveries (
                id TEXT PRIMARY KEY,
                webhook_id TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
                deployment_id TEXT NOT NULL,
                event TEXT NOT NULL,
                attempt INTEGER NOT NULL,
                time BIGINT NOT NULL,
                status_code INTEGER NULL,
                error TEXT NULL,
                delivered BOOLEAN NOT NULL
            )
            """,
            "CREATE INDEX webhook_deliveries_webhook_time ON webhook_deliveries (webhook_id, time)",
            """
            CREATE TABLE dashboard_sessions (
                secret_hash TEXT PRIMARY KEY,
                token_id TEXT NOT NULL REFERENCES tokens(id) ON DELETE CASCADE,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX dashboard_sessions_token ON dashboard_sessions (token_id)",
        ]
    }

    /// What a deployment asks of its activation (health checks, grace, timeout; JSON) and the check
    /// results its agent reported (JSON).
    static let activation = Migration(version: 4, name: "deployment activation settings and check results") { _ in
        [
            "ALTER TABLE deployments ADD COLUMN activation TEXT NULL",
            "ALTER TABLE deployments ADD COLUMN check_results TEXT NULL",
        ]
    }

    /// What a cache keeps and for how long, when its paths were last used, how often it was asked,
    /// and the blobs no path uses any more (deleted after a grace period).
    static let cacheLifecycle = Migration(version: 5, name: "cache retention, path access times, orphan blobs") { _ in
        [
            // NULL: kept forever / no size bound.
            "ALTER TABLE caches ADD COLUMN retention_seconds BIGINT NULL",
            "ALTER TABLE caches ADD COLUMN max_size BIGINT NULL",
            "ALTER TABLE caches ADD COLUMN keep_generations INTEGER NOT NULL DEFAULT 3",
            "ALTER TABLE caches ADD COLUMN last_gc_at BIGINT NULL",
            "ALTER TABLE paths ADD COLUMN last_accessed_at BIGINT NOT NULL DEFAULT 0",
            "UPDATE paths SET last_accessed_at = created_at",
            "CREATE INDEX paths_cache_access ON paths (cache_id, last_accessed_at)",
            """
            CREATE TABLE cache_request_counts (
                cache_id TEXT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
                hour BIGINT NOT NULL,
                hits BIGINT NOT NULL,
                misses BIGINT NOT NULL,
                PRIMARY KEY (cache_id, hour)
            )
            """,
            """
            CREATE TABLE blob_orphans (
                file_name TEXT PRIMARY KEY,
                since BIGINT NOT NULL
            )
            """,
        ]
    }

    /// A private cache's name is its workspace's own: unique per workspace. A public cache's name is
    /// public, so it stays unique among public caches. (Before: unique across every workspace, which
    /// told anyone that tried a name whether another workspace had a private cache of it.)
    static let cacheNamesByWorkspace = Migration(
        version: 6, name: "cache names unique per workspace and among public caches", rebuildsTables: true
    ) { backend in
        let scoped = [
            "CREATE UNIQUE INDEX caches_workspace_name ON caches (workspace_id, name)",
            "CREATE UNIQUE INDEX caches_public_name ON caches (name) WHERE is_public",
        ]
        switch backend {
        case .postgres:
            return ["ALTER TABLE caches DROP CONSTRAINT caches_name_key"] + scoped
        case .sqlite:
            let columns = """
                id, workspace_id, name, is_public, key_name, secret_key, public_key, compression, priority, \
                created_at, retention_seconds, max_size, keep_generations, last_gc_at
                """
            return [
                """
                CREATE TABLE caches_rebuilt (
                    id TEXT PRIMARY KEY,
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    is_public BOOLEAN NOT NULL,
                    key_name TEXT NOT NULL,
                    secret_key TEXT NOT NULL,
                    public_key TEXT NOT NULL,
                    compression TEXT NOT NULL,
                    priority INTEGER NOT NULL,
                    created_at BIGINT NOT NULL,
                    retention_seconds BIGINT NULL,
                    max_size BIGINT NULL,
                    keep_generations INTEGER NOT NULL DEFAULT 3,
                    last_gc_at BIGINT NULL
                )
                """,
                "INSERT INTO caches_rebuilt (\(columns)) SELECT \(columns) FROM caches",
                "DROP TABLE caches",
                "ALTER TABLE caches_rebuilt RENAME TO caches",
                "CREATE INDEX caches_workspace ON caches (workspace_id)",
            ] + scoped
        }
    }

    /// Uploads not yet paths (staged NARs, multipart parts), one row each, and their total per cache,
    /// kept in the same transaction: bounding them reads one row instead of listing the blob store.
    /// Uploads staged before this migration are not counted; they expire as before.
    static let pendingUploads = Migration(version: 7, name: "pending uploads and their bytes per cache") { _ in
        [
            """
            CREATE TABLE pending_uploads (
                blob_key TEXT PRIMARY KEY,
                cache_id TEXT NOT NULL REFERENCES caches(id) ON DELETE CASCADE,
                upload_id TEXT NULL,
                bytes BIGINT NOT NULL,
                created_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX pending_uploads_cache ON pending_uploads (cache_id)",
            "CREATE INDEX pending_uploads_upload ON pending_uploads (upload_id)",
            "ALTER TABLE caches ADD COLUMN pending_upload_bytes BIGINT NOT NULL DEFAULT 0",
        ]
    }

    /// Rollouts in waves: the rollout's progress (its row is what replicas claim a wave with), and which
    /// wave each of its deployments belongs to, held back from its agent until that wave starts.
    static let rollouts = Migration(version: 8, name: "rollouts: deployments in waves with health gates") { _ in
        [
            """
            CREATE TABLE rollouts (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
                activation_id TEXT NOT NULL,
                state TEXT NOT NULL,
                wave INTEGER NOT NULL,
                wave_count INTEGER NOT NULL,
                max_failures INTEGER NOT NULL,
                pause_ms BIGINT NOT NULL,
                next_wave_at BIGINT NULL,
                reason TEXT NULL,
                created_by TEXT NULL,
                created_at BIGINT NOT NULL,
                finished_at BIGINT NULL
            )
            """,
            "CREATE INDEX rollouts_state ON rollouts (state)",
            """
            CREATE TABLE rollout_deployments (
                deployment_id TEXT PRIMARY KEY REFERENCES deployments(id) ON DELETE CASCADE,
                rollout_id TEXT NOT NULL REFERENCES rollouts(id) ON DELETE CASCADE,
                wave INTEGER NOT NULL,
                held BOOLEAN NOT NULL
            )
            """,
            "CREATE INDEX rollout_deployments_rollout ON rollout_deployments (rollout_id, wave)",
        ]
    }

    /// Whether an agent's machine must reboot to run its deployed configuration, as the agent last said.
    static let agentRebootState = Migration(version: 9, name: "agents: needs reboot") { _ in
        ["ALTER TABLE agents ADD COLUMN needs_reboot BOOLEAN NULL"]
    }

    /// A cache's pending upload bytes are summed from `pending_uploads` (reservations of uploads
    /// streaming in included) through an index that covers the sum, instead of kept in a counter.
    static let pendingUploadsSummed = Migration(version: 10, name: "pending upload bytes summed, not counted") { _ in
        [
            "CREATE INDEX pending_uploads_cache_bytes ON pending_uploads (cache_id, bytes)",
            "DROP INDEX pending_uploads_cache",
            "ALTER TABLE caches DROP COLUMN pending_upload_bytes",
        ]
    }

    /// An activation's deployments are found through an index (its audit events are written from
    /// them): without one every activation read the whole history of deployments, and took longer
    /// with every activation before it.
    static let deploymentsByActivation = Migration(version: 11, name: "deployments: index by activation") { _ in
        ["CREATE INDEX deployments_activation ON deployments (activation_id)"]
    }
}
