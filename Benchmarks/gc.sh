#!/usr/bin/env bash
# Garbage collection of a large cache: N synthetic paths (closures of 10, one in ten pinned by an
# agent, all last used 30 days ago) written straight into a fresh server's database (SQLite, or a
# throwaway PostgreSQL 15 cluster with BENCH_DATABASE=postgres) and blob directory, then, timed on
# the server's side through the CLI: the plan alone (`gc --dry-run`), the collection (narinfo of
# every unpinned path removed, its blob recorded as unused), and the deletion of the blobs once
# their grace period is over. Prints wall time and the server's peak RSS, then
# what the collection removed and kept, to compare with what was written.
# Usage: Benchmarks/gc.sh   env: PATHS (default 100000), BENCH_DATABASE (sqlite, postgres),
#   CAPSTAN_BENCH_DIR, SKIP_BUILD=1, CAPSTAN_BIN
set -euo pipefail
source "$(dirname "$0")/common.sh"

count=${PATHS:-100000}
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-gc-bench}
backend=${BENCH_DATABASE:-sqlite}
mkdir -p "$work"
chmod 755 "$work"  # the postgres user reaches its cluster inside
trap 'stop_server; pg_stop' EXIT
trap 'exit 143' TERM INT HUP  # so that the EXIT trap stops the server and cluster (e.g. under timeout)
build_capstan

case $backend in
    sqlite) backend_name=SQLite ;;
    postgres)
        backend_name="PostgreSQL 15"
        pg_start "$work/pg"
        database_url=$(pg_createdb bench)
        ;;
    *) echo "BENCH_DATABASE: sqlite or postgres, not $backend" >&2; exit 1 ;;
esac

data=$work/data
start_server "$data"
"$capstan" cache create bench --public >/dev/null
stop_server
populated=$(python3 "$repo/Benchmarks/gc_populate.py" ${database_url:+--database-url "$database_url"} \
    "$data" bench "$count")
echo "$populated" >&2

# The same data directory again, with a short grace period for the blob step.
port=$(free_port)
CAPSTAN_LOG_LEVEL=warning CAPSTAN_GC_BLOB_GRACE=2s "$capstan" serve --data-dir "$data" \
    --listen "127.0.0.1:$port" ${database_url:+--database-url "$database_url"} >>"$data.log" 2>&1 &
server_pid=$!
export CAPSTAN_URL=http://127.0.0.1:$port
for _ in $(seq 200); do curl -fsS "$CAPSTAN_URL/health" >/dev/null 2>&1 && break; sleep 0.1; done
"$capstan" cache configure bench --retention 7d >/dev/null

measure() {  # label, command...
    local label=$1 start end
    shift
    start=$(date +%s.%N)
    "$@" >"$work/out.json"
    end=$(date +%s.%N)
    printf '| %-44s | %9.2f | %14s |\n' "$label" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
        "$(mib "$(proc_kib "$server_pid" VmHWM)")"
}

idle=$(proc_kib "$server_pid" VmRSS)
echo
echo "$count paths in closures of 10, 1 in 10 closures pinned; $backend_name; server RSS at start $(mib "$idle") MiB."
echo
printf '| %-44s | %9s | %14s |\n' "step" "seconds" "server peak MiB"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..16})"
measure "cache info (statistics, next GC)" "$capstan" cache info bench --json
measure "cache gc --dry-run (plan)" "$capstan" cache gc bench --dry-run --json
removed=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["removed"]))' "$work/out.json")
measure "cache gc (remove $removed narinfos)" "$capstan" cache gc bench --json
collected=$(python3 -c 'import json,sys; r = json.load(open(sys.argv[1]))
print("removed %d, kept %d (pinned %d)" % (len(r["removed"]), r["keptPaths"], r["pinnedPaths"]))' "$work/out.json")
sleep 2.5
measure "cache gc (delete the blobs after the grace)" "$capstan" cache gc bench --json
deleted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blobsDeleted"])' "$work/out.json")
echo
echo "written: $populated"
echo "gc: $collected; blobs deleted: $deleted; blobs left: $(ls "$data/blobs/nar" | wc -l)"
