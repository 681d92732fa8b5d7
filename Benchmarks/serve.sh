#!/usr/bin/env bash
# Serving a binary cache: capstan against nginx serving the same closure written by
# `nix copy --to file://DIR?compression=zstd`. Measures narinfo requests/s with wrk (rotating over
# every narinfo of the closure, public cache and private cache with a Bearer token) and the download
# throughput of the largest NAR with curl. Everything on 127.0.0.1.
# Usage: Benchmarks/serve.sh   env: SIZE_MIB (closure, default 640: its largest NAR is 40 % of it),
#        SMALL_PATHS (extra tiny paths, default 300), DURATION (wrk seconds, default 10),
#        WRK_THREADS (default 2), WRK_CONNECTIONS (default 64), CAPSTAN_BENCH_DIR, SKIP_BUILD=1
set -euo pipefail
source "$(dirname "$0")/common.sh"

size_mib=${SIZE_MIB:-640}
small=${SMALL_PATHS:-300}
duration=${DURATION:-10}
threads=${WRK_THREADS:-2}
connections=${WRK_CONNECTIONS:-64}
cores=$(nproc)
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-serve-bench}
mkdir -p "$work"
nginx_pid=""
cleanup() {
    stop_server
    if [[ -n $nginx_pid ]]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

build_capstan
echo "building the closure (${size_mib} MiB + $small small paths)" >&2
nix-build "$repo/Benchmarks/closure.nix" --arg sizeMiB "$size_mib" --arg small "$small" -o "$work/result" >/dev/null
top=$(readlink -f "$work/result")
nix-store -qR "$top" | sed 's|^/nix/store/||; s|-.*||' >"$work/hashes"
paths=$(wc -l <"$work/hashes")
big=$(nix-store -qR "$top" | grep -- '-bench-random$')

echo "filling the caches" >&2
start_server "$work/capstan-data"
"$capstan" cache create bench --public >/dev/null
"$capstan" cache create private >/dev/null
"$capstan" push bench "$top" >"$work/push.log" 2>&1
"$capstan" push private "$top" >>"$work/push.log" 2>&1
rm -rf "$work/nix-cache"
nix copy --to "file://$work/nix-cache?compression=zstd" "$top" 2>"$work/nix-copy.log"

port=$(free_port)
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<CONF
user root;
worker_processes $cores;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    server {
        listen 127.0.0.1:$port;
        root $work/nix-cache;
    }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" &
nginx_pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/nix-cache-info" >/dev/null 2>&1 && break; sleep 0.1; done
nginx_url=http://127.0.0.1:$port

# Sanity: both serve every narinfo.
first=$(head -1 "$work/hashes")
curl -fsS "$CAPSTAN_URL/cache/bench/$first.narinfo" >/dev/null
curl -fsS "$nginx_url/$first.narinfo" >/dev/null

# wrk: prints requests/s; fails on non-2xx answers.
narinfo_rps() { # base-url prefix [token]
    HASHES_FILE=$work/hashes URL_PREFIX=$2 BEARER=${3:-} \
        wrk -t"$threads" -c"$connections" -d"${duration}s" -s "$repo/Benchmarks/narinfo.lua" "$1" >"$work/wrk.out"
    if grep -q 'Non-2xx' "$work/wrk.out"; then cat "$work/wrk.out" >&2; echo "non-2xx answers" >&2; exit 1; fi
    awk '/Requests\/sec/ { print $2 }' "$work/wrk.out"
}
echo "narinfo load (${duration}s each)" >&2
c_pub=$(narinfo_rps "$CAPSTAN_URL" /cache/bench/)
c_rss_narinfo=$(proc_kib "$server_pid" VmHWM)
c_priv=$(narinfo_rps "$CAPSTAN_URL" /cache/private/ "$CAPSTAN_TOKEN")
n_pub=$(narinfo_rps "$nginx_url" /)
n_priv=$(narinfo_rps "$nginx_url" / "$CAPSTAN_TOKEN")  # nginx ignores the header; same client work

# The largest NAR, best of 3 downloads.
c_nar=$(curl -fsS "$CAPSTAN_URL/cache/bench/$(basename "$big" | cut -c1-32).narinfo" | awk '/^URL:/ { print $2 }')
n_nar=$(awk '/^URL:/ { print $2 }' "$work/nix-cache/$(basename "$big" | cut -c1-32).narinfo")
download() { # url -> "bytes MB/s" (best of 3)
    local best=0 out
    for _ in 1 2 3; do
        out=$(curl -fsS -o /dev/null -w '%{size_download} %{speed_download}' "$1")
        best=$(awk -v a="${out#* }" -v b="$best" 'BEGIN { print (a > b ? a : b) }')
    done
    echo "${out%% *} $(awk -v s="$best" 'BEGIN { printf "%.0f", s / 1e6 }')"
}
read -r c_bytes c_mbs < <(download "$CAPSTAN_URL/cache/bench/$c_nar")
read -r n_bytes n_mbs < <(download "$nginx_url/$n_nar")
c_rss=$(proc_kib "$server_pid" VmHWM)

echo
echo "Closure: $paths paths; largest NAR: $big (capstan file $c_bytes bytes, nginx file $n_bytes bytes)."
echo "wrk -t$threads -c$connections -d${duration}s; nginx worker_processes $cores, sendfile on; capstan peak RSS $(mib "$c_rss") MiB."
echo
printf '| %-36s | %12s | %12s | %6s |\n' "measurement" "capstan" "nginx" "ratio"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..38})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..8})"
printf '| %-36s | %12.0f | %12.0f | %6s |\n' "narinfo requests/s (public cache)" "$c_pub" "$n_pub" "$(ratio "$c_pub" "$n_pub")"
printf '| %-36s | %12.0f | %12.0f | %6s |\n' "narinfo requests/s (private, token)" "$c_priv" "$n_priv" "$(ratio "$c_priv" "$n_priv")"
printf '| %-36s | %12s | %12s | %6s |\n' "NAR download MB/s (one stream)" "$c_mbs" "$n_mbs" "$(ratio "$c_mbs" "$n_mbs")"
