#!/usr/bin/env bash
# Server memory while one large NAR goes through it: a store path holding a single 2 GiB
# incompressible file is pushed with `capstan push`, then its NAR is downloaded with curl. The
# server's VmRSS is sampled every 50 ms from /proc; VmHWM is read at the end. Goal: flat, the
# peak less than 100 MiB above idle whatever the NAR size.
# Usage: Benchmarks/memory.sh   env: SIZE_MIB (file size, default 2048), CAPSTAN_BENCH_DIR, SKIP_BUILD=1
set -euo pipefail
source "$(dirname "$0")/common.sh"

size_mib=${SIZE_MIB:-2048}
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-memory-bench}
mkdir -p "$work"
sampler=""
cleanup() {
    [[ -n $sampler ]] && kill "$sampler" 2>/dev/null || true
    stop_server
}
trap cleanup EXIT

build_capstan
echo "building a store path with one ${size_mib} MiB file" >&2
nix-build "$repo/Benchmarks/big.nix" --arg sizeMiB "$size_mib" -o "$work/result" >/dev/null
path=$(readlink -f "$work/result")
nar_bytes=$(nix path-info -s --json "$path" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["narSize"])')

start_server "$work/capstan-data"
"$capstan" cache create bench --public >/dev/null
sleep 1
idle=$(proc_kib "$server_pid" VmRSS)

echo "0" >"$work/peak"
sample_start
/usr/bin/time -f '%e %M' -o "$work/time" "$capstan" push bench "$path" >"$work/push.log" 2>&1 \
    || { cat "$work/push.log" >&2; exit 1; }
up_peak=$(sample_stop)
read -r up_secs client_rss <"$work/time"
after_up=$(proc_kib "$server_pid" VmRSS)

hash=$(basename "$path" | cut -c1-32)
nar=$(curl -fsS "$CAPSTAN_URL/cache/bench/$hash.narinfo" | awk '/^URL:/ { print $2 }')
echo "0" >"$work/peak"
sample_start
down=$(curl -fsS -o /dev/null -w '%{size_download} %{time_total}' "$CAPSTAN_URL/cache/bench/$nar")
down_peak=$(sample_stop)
hwm=$(proc_kib "$server_pid" VmHWM)
read -r down_bytes down_secs <<<"$down"

echo
echo "NAR: $nar_bytes bytes (one ${size_mib} MiB incompressible file), stored as $down_bytes bytes of zstd."
echo
printf '| %-34s | %12s | %14s | %10s |\n' "phase" "server MiB" "above idle MiB" "seconds"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..36})" "$(printf -- '-%.0s' {1..14})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..12})"
printf '| %-34s | %12s | %14s | %10s |\n' "idle (cache created)" "$(mib "$idle")" "0" "–"
printf '| %-34s | %12s | %14s | %10s |\n' "upload (capstan push), peak VmRSS" "$(mib "$up_peak")" "$(mib $((up_peak - idle)))" "$up_secs"
printf '| %-34s | %12s | %14s | %10s |\n' "after upload, VmRSS" "$(mib "$after_up")" "$(mib $((after_up - idle)))" "–"
printf '| %-34s | %12s | %14s | %10s |\n' "download (curl), peak VmRSS" "$(mib "$down_peak")" "$(mib $((down_peak - idle)))" "$down_secs"
printf '| %-34s | %12s | %14s | %10s |\n' "whole run, VmHWM" "$(mib "$hwm")" "$(mib $((hwm - idle)))" "–"
echo
echo "client (capstan push) peak RSS: $(mib "$client_rss") MiB"
