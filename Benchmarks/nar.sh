#!/usr/bin/env bash
# Compares capstan's NAR code with Nix's on a ~1 GiB tree: hashing, dumping and restoring,
# wall time and peak memory. Usage: Benchmarks/nar.sh   (CAPSTAN_BENCH_DIR=/somewhere to move the data)
set -euo pipefail

export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n'
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-nar-bench}
tree=$work/tree
nar=$work/tree.nar
mkdir -p "$work"

# Deterministic content: a big seeded stream cut into files, so reruns reuse the same tree.
if [[ ! -f $work/.complete ]]; then
    echo "generating ~1 GiB tree in $tree" >&2
    rm -rf "$tree"
    mkdir -p "$tree"
    python3 - "$tree" <<'PY'
import os, random, sys
root = sys.argv[1]
rng = random.Random(1234)
pool = rng.randbytes(64 << 20)
def blob(size, i):
    start = (i * 7919) % (len(pool) - size) if size < len(pool) else 0
    return pool[start:start + size] if size <= len(pool) else (pool * (size // len(pool) + 1))[:size]
n = 0
# Many small files (a source tree): 40,000 files in 400 directories, ~300 MiB.
for d in range(400):
    dd = os.path.join(root, "src", f"pkg{d:03}", "lib" if d % 2 else "bin")
    os.makedirs(dd, exist_ok=True)
    for f in range(100):
        size = rng.choice([0, 1, 7, 8, 9, 100, 1000, 4096, 10000, 30000])
        p = os.path.join(dd, f"file{f:03}.{'so' if f % 3 else 'txt'}")
        with open(p, "wb") as fh: fh.write(blob(size, n))
        if f % 10 == 0: os.chmod(p, 0o755)
        if f % 25 == 0: os.symlink(f"file{f:03}.{'so' if f % 3 else 'txt'}", p + ".link")
        n += 1
# Some big files, ~700 MiB.
os.makedirs(os.path.join(root, "big"), exist_ok=True)
for i, size in enumerate([256 << 20, 128 << 20, 128 << 20, 64 << 20, 64 << 20, 32 << 20, 16 << 20, 8 << 20]):
    with open(os.path.join(root, "big", f"blob{i}"), "wb") as fh:
        left = size
        while left:
            k = min(left, len(pool)); fh.write(pool[:k]); left -= k
PY
    nix-store --dump "$tree" > "$nar"
    touch "$work/.complete"
fi

# CAPSTAN_BIN: measure that binary instead of building the work tree (e.g. an older build).
capstan=${CAPSTAN_BIN:-$repo/.build/release/capstan}
if [[ -z ${CAPSTAN_BIN:-} && -z ${SKIP_BUILD:-} ]]; then
    echo "building capstan (release)" >&2
    (cd "$repo" && swift build -c release --product capstan >/dev/null)
fi
size=$(stat -c %s "$nar")
mib=$(awk -v s="$size" 'BEGIN { printf "%.0f", s / 1048576 }')

runs=${BENCH_RUNS:-3}
# Runs "$@" under /usr/bin/time (best of $runs by wall time) and prints "seconds maxrss_kib".
measure() {
    local best="" line
    for _ in $(seq "$runs"); do
        sync
        /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >/dev/null 2>&1
        line=$(tail -1 "$work/time.txt")
        if [[ -z $best ]] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then best=$line; fi
    done
    echo "$best"
}

restored=$work/restored
restore_with() { rm -rf "$restored"; "$@" "$restored" < "$nar"; }
export -f restore_with; export nar restored

# Checks first: the two tools must agree before their speed matters.
[[ $("$capstan" hash path "$tree") == $(nix hash path "$tree") ]] || { echo "hash mismatch" >&2; exit 1; }
cmp <("$capstan" nar dump "$tree") "$nar" || { echo "dump mismatch" >&2; exit 1; }

rows=()
run() { # label  capstan-command  nix-command
    local label=$1 ours theirs
    ours=$(measure bash -c "$2")
    theirs=$(measure bash -c "$3")
    rows+=("$label|${ours% *}|${ours#* }|${theirs% *}|${theirs#* }")
}
run "hash path" "$capstan hash path $tree" "nix hash path $tree"
# The machine's SHA-256 limit: the time to hash the NAR's bytes at openssl's rate on 64 KiB blocks.
sha_rate=$(openssl speed -evp sha256 -bytes 65536 -seconds 2 2>/dev/null | awk '$1 == "sha256" { sub(/k$/, "", $2); print $2 * 1000 }')
limit=$(awk -v s="$size" -v r="$sha_rate" 'BEGIN { printf "%.3f", s / r }')
IFS='|' read -r _ hash_s hash_rss _ <<<"${rows[0]}"
rows+=("hash path vs SHA-256 limit|$hash_s|$hash_rss|$limit|0")
run "hash path vs dump+sha256sum" "$capstan hash path $tree" "nix-store --dump $tree | sha256sum"
run "nar dump > /dev/null" "$capstan nar dump $tree > /dev/null" "nix-store --dump $tree > /dev/null"
run "nar restore" "restore_with $capstan nar restore" "restore_with nix-store --restore"
rm -rf "$restored"

printf '\nSHA-256 limit: openssl speed -evp sha256, 64 KiB blocks, %.0f MB/s\n' "$(awk -v r="$sha_rate" 'BEGIN { print r / 1e6 }')"
printf '\nNAR of %s MiB (%s bytes), %s, %s cores; best of %s; peak RSS of the whole pipeline'"'"'s largest process\n\n' \
    "$mib" "$size" "$(nix --version)" "$(nproc)" "$runs"
printf '| %-28s | %9s | %9s | %9s | %9s | %9s | %9s | %7s |\n' operation "capstan s" "MB/s" "RSS MiB" "ref s" "MB/s" "RSS MiB" ratio
printf '|%s|\n' "------------------------------|-----------|-----------|-----------|-----------|-----------|-----------|---------"
for row in "${rows[@]}"; do
    IFS='|' read -r label ct cm nt nm <<<"$row"
    awk -v l="$label" -v ct="$ct" -v cm="$cm" -v nt="$nt" -v nm="$nm" -v s="$size" 'BEGIN {
        cs = (ct > 0) ? s / ct / 1e6 : 0; ns = (nt > 0) ? s / nt / 1e6 : 0;
        printf "| %-28s | %9.2f | %9.0f | %9.1f | %9.2f | %9.0f | %9.1f | %7.2f |\n", l, ct, cs, cm / 1024, nt, ns, nm / 1024, (nt > 0) ? ct / nt : 0 }'
done
