# Shared by the benchmarks: Nix settings, a release build of capstan, a fresh server on a free
# loopback port, a throwaway PostgreSQL 15 cluster, and helpers to read memory figures. Source it;
# do not run it.

export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nbuild-users-group =\nsubstituters =\n'
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# CAPSTAN_BIN: measure that binary instead of building the work tree (e.g. an older build).
capstan=${CAPSTAN_BIN:-$repo/.build/release/capstan}

build_capstan() {
    if [[ -z ${SKIP_BUILD:-} && -z ${CAPSTAN_BIN:-} ]]; then
        echo "building capstan (release)" >&2
        (cd "$repo" && swift build -c release --product capstan >/dev/null)
    fi
    [[ -x $capstan ]] || { echo "no release build at $capstan" >&2; exit 1; }
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# A throwaway PostgreSQL 15 cluster in the new directory $1 (its parents readable by the postgres
# user), listening on a free loopback port, trust authentication; further arguments are server
# options (e.g. -c max_connections=200). Sets pg_dir and pg_port; pg_stop stops it.
pg_bin=/usr/lib/postgresql/15/bin
pg_dir=""
pg_port=""
pg_start() {
    pg_dir=$1
    shift
    pg_port=$(free_port)
    rm -rf "$pg_dir"
    mkdir -p "$pg_dir" && chown postgres "$pg_dir"
    runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/log" -w \
        -o "-h 127.0.0.1 -p $pg_port -k $pg_dir $*" start >/dev/null
}

# Creates database $1 in the cluster and prints its URL for `capstan serve --database-url`.
pg_createdb() {
    runuser -u postgres -- "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" "$1"
    echo "postgres://postgres@127.0.0.1:$pg_port/$1?sslmode=disable"
}

pg_stop() {
    if [[ -n $pg_dir ]]; then
        runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir" -m immediate stop >/dev/null 2>&1 || true
        pg_dir=""
    fi
}

server_pid=""
# The server's database when set (a postgres:// URL); SQLite in the data directory otherwise.
database_url=""
# Starts a fresh server on an empty data directory $1; sets server_pid, CAPSTAN_URL, CAPSTAN_TOKEN.
start_server() {
    local data=$1 port
    rm -rf "$data"
    mkdir -p "$data"
    chmod 700 "$data"  # the server refuses a data directory others can read
    port=$(free_port)
    CAPSTAN_LOG_LEVEL=${CAPSTAN_LOG_LEVEL:-warning} "$capstan" serve --data-dir "$data" --listen "127.0.0.1:$port" \
        ${database_url:+--database-url "$database_url"} >"$data.log" 2>&1 &
    server_pid=$!
    export CAPSTAN_URL=http://127.0.0.1:$port
    for _ in $(seq 200); do
        if [[ -s $data/admin-token ]] && curl -fsS "$CAPSTAN_URL/health" >/dev/null 2>&1; then
            export CAPSTAN_TOKEN
            CAPSTAN_TOKEN=$(cat "$data/admin-token")
            return 0
        fi
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not start; log:" >&2
    cat "$data.log" >&2
    exit 1
}

stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}

# The server's peak VmRSS over a phase: sample_start, the phase, then sample_stop prints it (KiB).
# The sampler writes the peak to $work/peak every 50 ms; the caller's cleanup kills $sampler.
sampler=""
sample_start() {
    echo 0 >"$work/peak"
    (max=0; while :; do
        r=$(proc_kib "$server_pid" VmRSS 2>/dev/null || echo 0)
        ((r > max)) && { max=$r; echo "$max" >"$work/peak"; }
        sleep 0.05
    done) &
    sampler=$!
}
sample_stop() { kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; sampler=""; cat "$work/peak"; }

# A /proc/PID/status field (VmRSS, VmHWM) in KiB.
proc_kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
