#!/usr/bin/env bash
# Where a narinfo request's CPU goes, layer by layer: `perf record -e cpu-clock -g` of the server
# while wrk asks for narinfos (public cache, then the private one with a Bearer token), then the
# inclusive samples of each layer's entry point as CPU µs per request. valgrind 3.19 cannot run the
# Swift 6 binaries (it stops reading their DWARF 5), so samples stand in for instruction counts.
# Run Benchmarks/serve.sh first with the same CAPSTAN_BENCH_DIR: this reuses its caches.
# Usage: Benchmarks/narinfo_profile.sh   env: CAPSTAN_BENCH_DIR, CAPSTAN_BIN or SKIP_BUILD=1, DURATION (8)
set -euo pipefail
source "$(dirname "$0")/common.sh"

work=${CAPSTAN_BENCH_DIR:-/tmp/capstan-serve-bench}
duration=${DURATION:-8}
[[ -s $work/capstan-data/admin-token && -s $work/hashes ]] || { echo "run Benchmarks/serve.sh first" >&2; exit 1; }
command -v perf >/dev/null || { echo "needs perf (Debian: linux-perf)" >&2; exit 1; }
build_capstan
token=$(cat "$work/capstan-data/admin-token")
port=$(free_port)
CAPSTAN_LOG_LEVEL=warning "$capstan" serve --data-dir "$work/capstan-data" --listen "127.0.0.1:$port" \
    >"$work/profile-capstan.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done

load() { # seconds prefix token
    HASHES_FILE=$work/hashes URL_PREFIX=$2 BEARER=$3 \
        wrk -t2 -c64 -d"$1s" -s "$repo/Benchmarks/narinfo.lua" "http://127.0.0.1:$port" >"$work/profile-wrk.out"
    if grep -q 'Non-2xx' "$work/profile-wrk.out"; then cat "$work/profile-wrk.out" >&2; exit 1; fi
}
for run in public private; do
    prefix=/cache/bench/ bearer=""
    [[ $run == private ]] && prefix=/cache/private/ bearer=$token
    load 2 "$prefix" "$bearer"
    perf record -F 4999 -e cpu-clock -g -p "$pid" -o "$work/profile-$run.data" -- sleep "$duration" >/dev/null 2>&1 &
    perf_pid=$!
    load $((duration + 2)) "$prefix" "$bearer"
    wait "$perf_pid"
    rps=$(awk '/Requests\/sec/ { print $2 }' "$work/profile-wrk.out")
    perf report -i "$work/profile-$run.data" --children --sort sym --stdio -g none 2>/dev/null >"$work/profile-$run.txt"
    echo "== $run cache: $rps requests/s while profiled"
    python3 - "$work/profile-$run.txt" "$rps" "$duration" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
requests = float(sys.argv[2]) * float(sys.argv[3])
events = float(re.search(r"Event count \(approx\.\): (\d+)", text).group(1))
rows = re.findall(r"^\s*([\d.]+)%\s+([\d.]+)%\s+\[.\]\s+(.*)$", text, re.M)
per_request = events / 1000 / requests  # cpu-clock events are nanoseconds
layers = [
    ("all the server's CPU", None),
    ("a socket read event, all it does", r"BaseSocketChannelC9readable"),
    ("read(2)", r"SocketC4read7pointer"),
    ("HTTP/1 decoder (llhttp) and all it fires", r"HTTPDecoderC6decode7context"),
    ("HTTP1ToHTTPServerCodec in, and all after it", r"ToHTTPServerCodecC11channelRead"),
    ("HTTPRequest from the decoded head", r"HTTPRequestV17NIOHTTPTypesHTTP1E_6secure11splitCookie"),
    ("RequestTracker in, and all after it", r"RequestTrackerC11channelRead"),
    ("Hummingbird's state handler in, and all after it", r"HTTPConnectionStateHandlerC11channelRead"),
    ("NarInfoFastPath, its answer and writes", r"NarInfoFastPathC11channelRead"),
    ("NarInfoAnswers.answer", r"NarInfoAnswersV6answer2to"),
    ("NarInfoLocation", r"NarInfoLocationV4path"),
    ("CacheService.rememberedNarInfo", r"CacheServiceV17rememberedNarInfo"),
    ("TokenService.rememberedPrincipal", r"TokenServiceV19rememberedPrincipal"),
    ("Credentials.secret(fromAuthorization:)", r"Credentials.*secret17fromAuthorization"),
    ("the answer's bytes (encoded once)", r"Answer.*encoded"),
    ("response down Hummingbird's state handler", r"HTTPConnectionStateHandlerC5write"),
    ("response through HTTP1ToHTTPServerCodec", r"ToHTTPServerCodecC5write"),
    ("response through HTTPResponseEncoder", r"HTTPResponseEncoderC5write"),
    ("flush: write(2) and loopback delivery", r"BaseSocketChannelC8flushNow"),
    ("swift_retain + swift_release (self)", r"^swift_(retain|release)$"),
    ("malloc + free (self)", r"^(malloc|cfree@GLIBC_2.2.5|_int_free)$"),
]
print(f"| {'layer (inclusive unless self)':<55} | µs/request |")
print(f"|{'-' * 57}|-----------:|")
for name, pattern in layers:
    if pattern is None:
        share = 100.0
    elif "(self)" in name:
        share = sum(float(s) for _, s, sym in rows if re.search(pattern, sym.strip()))
    else:
        share = next((float(c) for c, _, sym in rows if re.search(pattern, sym)), 0.0)
    print(f"| {name:<55} | {share * per_request / 100:10.2f} |")
PY
done
