#!/usr/bin/env bash
# Pushing a closure: `capstan push` (fresh server, fresh cache) against `nix copy` to a zstd file://
# cache (fresh directory), same closure, same run. Prints wall time, throughput, peak RSS of the
# client (and of the capstan server) and the ratio capstan/nix (below 1: capstan is faster).
# Usage: Benchmarks/push.sh   env: SIZE_MIB (closure size, default 640), BENCH_RUNS (best of, default 2),
#        PUSH_ARGS (extra `capstan push` options), CAPSTAN_BENCH_DIR (work dir), SKIP_BUILD=1
set -euo pipefail
source "$(dirname "$0")/common.sh"

size_mib=${SIZE_MIB:-640}
runs=${BENCH_RUNS:-2}
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-push-bench}
mkdir -p "$work"
trap 'stop_server' EXIT

build_capstan
echo "building the closure (${size_mib} MiB)" >&2
nix-build "$repo/Benchmarks/closure.nix" --arg sizeMiB "$size_mib" -o "$work/result" >/dev/null
top=$(readlink -f "$work/result")
mapfile -t closure < <(nix-store -qR "$top")
nar_bytes=$(nix path-info -S --json "$top" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["closureSize"])')
files=$(find "${closure[@]}" | wc -l)
echo "closure: ${#closure[@]} paths, $nar_bytes NAR bytes, $files files" >&2

best_capstan="" best_nix=""
for run in $(seq "$runs"); do
    # capstan: a fresh server and cache every run.
    start_server "$work/capstan-data"
    "$capstan" cache create bench --public >/dev/null
    idle=$(proc_kib "$server_pid" VmRSS)
    /usr/bin/time -f '%e %M' -o "$work/time" "$capstan" push ${PUSH_ARGS:-} bench "$top" >"$work/push.log" 2>&1 \
        || { cat "$work/push.log" >&2; exit 1; }
    read -r secs rss <"$work/time"
    hwm=$(proc_kib "$server_pid" VmHWM)
    stop_server
    echo "run $run capstan push: ${secs}s client ${rss} KiB, server idle ${idle} KiB peak ${hwm} KiB" >&2
    if [[ -z $best_capstan ]] || awk -v a="$secs" -v b="${best_capstan%% *}" 'BEGIN { exit !(a < b) }'; then
        best_capstan="$secs $rss $idle $hwm"
    fi

    rm -rf "$work/nix-cache"
    /usr/bin/time -f '%e %M' -o "$work/time" nix copy --to "file://$work/nix-cache?compression=zstd" "$top" 2>"$work/nix-copy.log"
    read -r secs rss <"$work/time"
    echo "run $run nix copy: ${secs}s ${rss} KiB" >&2
    if [[ -z $best_nix ]] || awk -v a="$secs" -v b="${best_nix%% *}" 'BEGIN { exit !(a < b) }'; then
        best_nix="$secs $rss"
    fi
done

read -r c_secs c_rss c_idle c_hwm <<<"$best_capstan"
read -r n_secs n_rss <<<"$best_nix"
stored=$(du -sb "$work/capstan-data/blobs" 2>/dev/null | cut -f1 || echo 0)
nix_stored=$(du -cb "$work"/nix-cache/nar/* | tail -1 | cut -f1)
echo
echo "Closure: ${#closure[@]} paths, $files files, $nar_bytes NAR bytes; best of $runs runs."
echo
printf '| %-32s | %9s | %7s | %14s | %14s | %15s |\n' "command" "seconds" "MB/s" "client RSS MiB" "server RSS MiB" "stored bytes"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..34})" "$(printf -- '-%.0s' {1..11})" "$(printf -- '-%.0s' {1..9})" \
    "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..17})"
printf '| %-32s | %9s | %7.0f | %14s | %14s | %15s |\n' "capstan push" "$c_secs" "$(awk -v b="$nar_bytes" -v s="$c_secs" 'BEGIN { print b / s / 1e6 }')" \
    "$(mib "$c_rss")" "$(mib "$c_idle") -> $(mib "$c_hwm")" "$(du -sb "$work/capstan-data" | cut -f1)"
printf '| %-32s | %9s | %7.0f | %14s | %14s | %15s |\n' "nix copy --to file://...zstd" "$n_secs" "$(awk -v b="$nar_bytes" -v s="$n_secs" 'BEGIN { print b / s / 1e6 }')" \
    "$(mib "$n_rss")" "–" "$nix_stored"
echo
echo "ratio capstan/nix (time): $(ratio "$c_secs" "$n_secs")"
