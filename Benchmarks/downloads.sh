#!/usr/bin/env bash
# Concurrent NAR downloads: server memory per download, and throughput against nginx serving the
# same NAR file. One store path holds a single incompressible file (64 MiB by default); it is pushed
# to a public cache, then CONCURRENT curl processes download its NAR at once, ROUNDS times. The
# server's VmRSS is sampled every 50 ms; VmRSS is read again 2 s after the last download.
# Usage: Benchmarks/downloads.sh   env: SIZE_MIB (64), CONCURRENT (16), ROUNDS (3), CAPSTAN_BENCH_DIR,
#        SKIP_BUILD=1, CAPSTAN_BIN
set -euo pipefail
source "$(dirname "$0")/common.sh"

size_mib=${SIZE_MIB:-64}
concurrent=${CONCURRENT:-16}
rounds=${ROUNDS:-3}
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-downloads-bench}
mkdir -p "$work"
sampler=""
nginx_pid=""
cleanup() {
    [[ -n $sampler ]] && kill "$sampler" 2>/dev/null || true
    if [[ -n $nginx_pid ]]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    stop_server
}
trap cleanup EXIT

build_capstan
nix-build "$repo/Benchmarks/big.nix" --arg sizeMiB "$size_mib" -o "$work/result" >/dev/null
path=$(readlink -f "$work/result")
hash=$(basename "$path" | cut -c1-32)

start_server "$work/capstan-data"
"$capstan" cache create bench --public >/dev/null
"$capstan" push bench "$path" >"$work/push.log" 2>&1 || { cat "$work/push.log" >&2; exit 1; }
nar=$(curl -fsS "$CAPSTAN_URL/cache/bench/$hash.narinfo" | awk '/^URL:/ { print $2 }')
# nginx serves the very file capstan stores, so both send the same bytes.
blob=$(find "$work/capstan-data/blobs/nar" -type f -size +1M | head -1)
mkdir -p "$work/nginx/root"
cp "$blob" "$work/nginx/root/nar"
port=$(free_port)
cat >"$work/nginx/nginx.conf" <<CONF
user root;
worker_processes $(nproc);
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    server { listen 127.0.0.1:$port; root $work/nginx/root; }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$port/nar" 2>/dev/null && break; sleep 0.1; done

sleep 1
idle=$(proc_kib "$server_pid" VmRSS)

# CONCURRENT downloads of $1 at once, ROUNDS times; prints total MB/s of the best round.
downloads() {
    local best=0
    for _ in $(seq "$rounds"); do
        local start end bytes=0 pids=()
        start=$(date +%s.%N)
        for i in $(seq "$concurrent"); do
            curl -fsS -o /dev/null -w '%{size_download}\n' "$1" >"$work/dl.$i" &
            pids+=($!)
        done
        wait "${pids[@]}"
        end=$(date +%s.%N)
        for i in $(seq "$concurrent"); do bytes=$((bytes + $(cat "$work/dl.$i"))); done
        best=$(awk -v b="$bytes" -v s="$start" -v e="$end" -v m="$best" 'BEGIN { r = b / (e - s) / 1e6; print (r > m ? r : m) }')
    done
    printf '%.0f' "$best"
}

echo "0" >"$work/peak"
sample_start
c_mbs=$(downloads "$CAPSTAN_URL/cache/bench/$nar")
peak=$(sample_stop)
sleep 2
after=$(proc_kib "$server_pid" VmRSS)
n_mbs=$(downloads "http://127.0.0.1:$port/nar")

echo
echo "NAR file $(stat -c %s "$blob") bytes; $concurrent downloads at once, best of $rounds rounds."
echo
printf '| %-44s | %10s | %10s | %6s |\n' "measurement" "capstan" "nginx" "ratio"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..12})" "$(printf -- '-%.0s' {1..8})"
printf '| %-44s | %10s | %10s | %6s |\n' "download MB/s (all $concurrent together)" "$c_mbs" "$n_mbs" "$(ratio "$c_mbs" "$n_mbs")"
printf '| %-44s | %10s | %10s | %6s |\n' "server VmRSS idle MiB" "$(mib "$idle")" "–" "–"
printf '| %-44s | %10s | %10s | %6s |\n' "server peak VmRSS above idle MiB" "$(mib $((peak - idle)))" "–" "–"
printf '| %-44s | %10s | %10s | %6s |\n' "per download MiB" "$(mib $(((peak - idle) / concurrent)))" "–" "–"
printf '| %-44s | %10s | %10s | %6s |\n' "server VmRSS above idle 2 s after, MiB" "$(mib $((after - idle)))" "–" "–"
