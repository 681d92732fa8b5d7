#!/usr/bin/env bash
# Compares Capstan's streaming zstd (level 3) with the zstd command on the same input.
# Usage: Benchmarks/compression.sh [MiB]   (default 500; input is a tar of /usr, like a NAR of binaries)
set -euo pipefail
cd "$(dirname "$0")/.."

size_mib=${1:-500}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
input="$work/input.tar"

tar -C / -cf - usr 2>/dev/null | head -c $((size_mib * 1024 * 1024)) >"$input" || true
actual_mib=$(($(stat -c %s "$input") / 1048576))
echo "input: $actual_mib MiB (tar of /usr), $(nproc) cores, $(zstd --version | head -1)"

# Other test targets use @testable imports, which release builds allow only with -enable-testing.
release=(-c release -Xswiftc -enable-testing)
swift build "${release[@]}" --build-tests >/dev/null
cat "$input" >/dev/null # warm the page cache so both sides read from memory

# Prints "LABEL: N MiB in S s = R MiB/s" for a command whose throughput is measured on $2 MiB.
measure() {
  local label=$1 mib=$2
  shift 2
  local start end
  start=$(date +%s.%N)
  "$@"
  end=$(date +%s.%N)
  awk -v l="$label" -v m="$mib" -v s="$start" -v e="$end" \
    'BEGIN { printf "zstd-cli %s: %d MiB in %.2f s = %.0f MiB/s\n", l, m, e - s, m / (e - s) }'
}

measure "zstd -3 -T1 compress" "$actual_mib" sh -c "zstd -3 -T1 -q -c '$input' >'$input.zst'"
measure "zstd -3 -T2 compress" "$actual_mib" sh -c "zstd -3 -T2 -q -c '$input' >/dev/null"
measure "zstd -d decompress" "$actual_mib" sh -c "zstd -d -q -c '$input.zst' >/dev/null"
echo "zstd-cli output: $(($(stat -c %s "$input.zst") * 1000 / $(stat -c %s "$input") / 10))% of input"

CAPSTAN_BENCH=1 CAPSTAN_BENCH_INPUT="$input" \
  swift test "${release[@]}" --skip-build --filter 'CompressionTests.Benchmark' 2>&1 | grep '^capstan-bench'
