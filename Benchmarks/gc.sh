#!/usr/bin/env bash
# Garbage collection of a large cache: N synthetic paths (closures of 10, one in ten pinned by an
# agent, all last used 30 days ago) written straight into a fresh server's SQLite database and blob
# directory, then, timed on the server's side through the CLI: the plan alone (`gc --dry-run`), the
# collection (narinfo of every unpinned path removed, its blob recorded as unused), and the deletion
# of the blobs once their grace period is over. Prints wall time and the server's peak RSS.
# Usage: Benchmarks/gc.sh   env: PATHS (default 100000), CAPSTAN_BENCH_DIR, SKIP_BUILD=1, CAPSTAN_BIN
set -euo pipefail
source "$(dirname "$0")/common.sh"

count=${PATHS:-100000}
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-gc-bench}
mkdir -p "$work"
trap 'stop_server' EXIT
build_capstan

data=$work/data
start_server "$data"
"$capstan" cache create bench --public >/dev/null
stop_server
python3 "$repo/Benchmarks/gc_populate.py" "$data" bench "$count" >&2

# The same data directory again, with a short grace period for the blob step.
port=$(free_port)
CAPSTAN_LOG_LEVEL=warning CAPSTAN_GC_BLOB_GRACE=2s "$capstan" serve --data-dir "$data" \
    --listen "127.0.0.1:$port" >>"$data.log" 2>&1 &
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
echo "$count paths in closures of 10, 1 in 10 closures pinned; SQLite; server RSS at start $(mib "$idle") MiB."
echo
printf '| %-44s | %9s | %14s |\n' "step" "seconds" "server peak MiB"
printf '|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..16})"
measure "cache info (statistics, next GC)" "$capstan" cache info bench --json
measure "cache gc --dry-run (plan)" "$capstan" cache gc bench --dry-run --json
removed=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["removed"]))' "$work/out.json")
measure "cache gc (remove $removed narinfos)" "$capstan" cache gc bench --json
sleep 2.5
measure "cache gc (delete the blobs after the grace)" "$capstan" cache gc bench --json
deleted=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["blobsDeleted"])' "$work/out.json")
echo
echo "blobs deleted: $deleted; blobs left: $(ls "$data/blobs/nar" | wc -l)"
