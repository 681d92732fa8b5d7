#!/usr/bin/env bash
# Blobs on the filesystem against blobs in an S3-compatible object store (moto's server on
# loopback, started here): `capstan push` of one closure into a fresh server, then every NAR of
# the closure downloaded once (narinfo, then NAR, through curl), streamed through the server, and
# for the object store also redirected to presigned URLs (nar_redirect). Prints wall time,
# throughput and the server's peak RSS. moto is a single Python process: the object-store rows
# measure it as much as capstan.
# Usage: Benchmarks/objectstore.sh   env: SIZE_MIB (default 256), CAPSTAN_BENCH_DIR, SKIP_BUILD=1
set -euo pipefail
source "$(dirname "$0")/common.sh"

size_mib=${SIZE_MIB:-256}
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-objectstore-bench}
mkdir -p "$work"
moto_pid=""
cleanup() {
    stop_server
    [[ -n $moto_pid ]] && kill "$moto_pid" 2>/dev/null && wait "$moto_pid" 2>/dev/null || true
}
trap cleanup EXIT
build_capstan
python3 -c 'import moto.server, boto3' 2>/dev/null || python3 -m pip install -q 'moto[server]==5.2.1' 2>/dev/null \
  || python3 -m pip install -q --break-system-packages 'moto[server]==5.2.1'

echo "building the closure (${size_mib} MiB)" >&2
nix-build "$repo/Benchmarks/closure.nix" --arg sizeMiB "$size_mib" -o "$work/result" >/dev/null
top=$(readlink -f "$work/result")
mapfile -t closure < <(nix-store -qR "$top")
nar_bytes=$(nix path-info -S --json "$top" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["closureSize"])')

moto_port=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$moto_port/moto-api/" >/dev/null 2>&1 && break; sleep 0.1; done
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
curl -fsS -X PUT "http://127.0.0.1:$moto_port/bench" >/dev/null
curl -fsS -X PUT "http://127.0.0.1:$moto_port/bench2" >/dev/null

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
mbps() { awk -v n="$nar_bytes" -v s="$1" 'BEGIN { printf "%.0f", n / s / 1e6 }'; }

download_all() {  # every NAR of the closure, as Nix would fetch it (following redirects)
    for path in "${closure[@]}"; do
        hash=$(basename "$path" | cut -c1-32)
        url=$(curl -fsS "$CAPSTAN_URL/cache/bench/$hash.narinfo" | awk '/^URL: / { print $2 }')
        curl -fsSL -o /dev/null "$CAPSTAN_URL/cache/bench/$url"
    done
}

row() {  # label, extra environment for the server
    local label=$1 start end push_s dl_s
    shift
    export "$@"
    start_server "$work/data"
    "$capstan" cache create bench --public >/dev/null
    start=$(date +%s.%N)
    "$capstan" push bench "$top" >"$work/push.log" 2>&1 || { cat "$work/push.log" >&2; exit 1; }
    end=$(date +%s.%N)
    push_s=$(elapsed "$start" "$end")
    start=$(date +%s.%N)
    download_all
    end=$(date +%s.%N)
    dl_s=$(elapsed "$start" "$end")
    printf '| %-36s | %7s | %6s | %7s | %6s | %15s |\n' "$label" "$push_s" "$(mbps "$push_s")" "$dl_s" "$(mbps "$dl_s")" \
        "$(mib "$(proc_kib "$server_pid" VmHWM)")"
    stop_server
    for assignment in "$@"; do unset "${assignment%%=*}"; done
}

echo
echo "Closure: ${#closure[@]} paths, $nar_bytes NAR bytes."
echo
printf '| %-36s | %7s | %6s | %7s | %6s | %15s |\n' "blob store" "push s" "MB/s" "fetch s" "MB/s" "server peak MiB"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..38})" "$(printf -- '-%.0s' {1..9})" "$(printf -- '-%.0s' {1..8})" \
    "$(printf -- '-%.0s' {1..9})" "$(printf -- '-%.0s' {1..8})" "$(printf -- '-%.0s' {1..17})"
row "filesystem" CAPSTAN_BENCH_ROW=fs
s3="s3://bench/nars?endpoint=http://127.0.0.1:$moto_port&region=us-east-1"
row "object store, streamed" CAPSTAN_BLOB_STORE="$s3"
row "object store, nar_redirect" CAPSTAN_BLOB_STORE="${s3/bench\/nars/bench2/nars}" CAPSTAN_NAR_REDIRECT=true
