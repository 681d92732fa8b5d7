#!/usr/bin/env bash
# CPU time a server spends per narinfo request (user + system time of its processes from /proc,
# over a 10 s wrk run after a 2 s warm-up, divided by the requests answered): capstan with the
# narinfo fast path off and on, then nginx. Unlike requests/s it says much the same on a loaded
# machine. Run Benchmarks/serve.sh first with the same CAPSTAN_BENCH_DIR: this reuses the closure,
# the caches and the nginx configuration it left there.
# Usage: Benchmarks/narinfo_cpu.sh   env: CAPSTAN_BENCH_DIR, WRK_THREADS (2), WRK_CONNECTIONS (64)
set -euo pipefail
source "$(dirname "$0")/common.sh"

work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-serve-bench}
threads=${WRK_THREADS:-2}
connections=${WRK_CONNECTIONS:-64}
[[ -s $work/capstan-data/admin-token && -s $work/hashes ]] || { echo "run Benchmarks/serve.sh first" >&2; exit 1; }
build_capstan
token=$(cat "$work/capstan-data/admin-token")
pids=""
cleanup() { for pid in $pids; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

ticks() { # pids -> their user + system clock ticks
    local total=0 pid
    for pid in "$@"; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
    echo "$total"
}
load() { # seconds url prefix token
    HASHES_FILE=$work/hashes URL_PREFIX=$3 BEARER=$4 \
        wrk -t"$threads" -c"$connections" -d"$1s" -s "$repo/Benchmarks/narinfo.lua" "$2" >"$work/cpu-wrk.out"
    if grep -q 'Non-2xx' "$work/cpu-wrk.out"; then cat "$work/cpu-wrk.out" >&2; echo "non-2xx answers" >&2; exit 1; fi
}
measure() { # label url prefix token pids...
    local label=$1 url=$2 prefix=$3 bearer=$4 before after
    shift 4
    load 2 "$url" "$prefix" "$bearer"
    before=$(ticks "$@")
    load 10 "$url" "$prefix" "$bearer"
    after=$(ticks "$@")
    awk -v label="$label" -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        /requests in/ { requests = $1 } /Requests\/sec/ { rps = $2 }
        END { printf "| %-45s | %10.0f | %8.1f |\n", label, rps, ticks * 1e6 / hz / requests }' "$work/cpu-wrk.out"
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-45s | %10s | %8s |\n' "server" "requests/s" "CPU µs/request"
for fast in false true; do
    port=$(free_port)
    CAPSTAN_NARINFO_FAST_PATH=$fast CAPSTAN_LOG_LEVEL=warning "$capstan" serve --data-dir "$work/capstan-data" \
        --listen "127.0.0.1:$port" >"$work/cpu-capstan.log" 2>&1 &
    pid=$!
    pids="$pids $pid"
    for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
    measure "capstan, fast path $fast, public cache" "http://127.0.0.1:$port" /cache/bench/ "" "$pid"
    measure "capstan, fast path $fast, private cache (token)" "http://127.0.0.1:$port" /cache/private/ "$token" "$pid"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
done
port=$(free_port)
sed "s/listen 127.0.0.1:[0-9]*;/listen 127.0.0.1:$port;/" "$work/nginx/nginx.conf" >"$work/nginx/cpu.conf"
nginx -c "$work/nginx/cpu.conf" -p "$work/nginx" &
pid=$!
pids="$pids $pid"
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/nix-cache-info" >/dev/null 2>&1 && break; sleep 0.1; done
# shellcheck disable=SC2046
measure "nginx (master and workers)" "http://127.0.0.1:$port" / "" "$pid" $(pgrep -P "$pid")
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
