#!/usr/bin/env bash
# Deployments to many agents: how long until every connected agent has its `deploy` message, and
# how much server memory an idle agent connection costs. Prints agent_load.py's JSON, then a table
# of Capstan's figures beside their goals (answer within 1 s, every agent told within 2 s, none
# dropped or left Pending, 32 KiB per idle agent) and the ratio to each goal.
#
# Usage: Benchmarks/agents.sh [N ...]            (default: 1 100 1000)
#   BENCH_ROUNDS=3            activation rounds per N (agents ack in between, so nothing stays pending)
#   BENCH_DATABASE=postgres   run on a throwaway PostgreSQL 15 cluster instead of SQLite
#   BENCH_NO_BUILD=1          use the existing .build/release/capstan
#   CAPSTAN_BIN=/path         benchmark this capstan binary instead (implies BENCH_NO_BUILD)
#   BENCH_LOG_LEVEL=info      the server's log level (default info, as in production)
#   BENCH_EXTRA="--no-ack"    extra flags for Benchmarks/agent_load.py
#   BENCH_PROCS=K             load processes holding the agents (default 1, and 2 from 5,000 agents on)
#   BENCH_LOG_DIR=/path       keep each server's log there (server-N.log; postgres-N.log on PostgreSQL)
#   BENCH_PG_OPTIONS="-c log_min_duration_statement=100"   extra settings of the PostgreSQL cluster
# Needs python3 with the `websockets` package (Debian's python3-websockets, or pip install websockets). Loopback only; every
# server, database and agent started here is stopped on exit.
set -euo pipefail
source "$(dirname "$0")/common.sh"

if (($#)); then counts=("$@"); else counts=(1 100 1000); fi
rounds=${BENCH_ROUNDS:-3}
work=$(mktemp -d /tmp/capstan-agents-bench.XXXXXX)
chmod 755 "$work"
server_pid=
ulimit -n "$(ulimit -Hn)"

cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT

if [[ -z ${BENCH_NO_BUILD:-}${CAPSTAN_BIN:-} ]]; then
    (cd "$repo" && swift build -c release --product capstan >&2)
fi
capstan=${CAPSTAN_BIN:-$repo/.build/release/capstan}
# The first python3 that has websockets (pyenv's may not; Debian's python3-websockets is enough).
python=
for candidate in ${BENCH_PYTHON:-} python3 /usr/bin/python3; do
    if "$candidate" -c 'import websockets' 2>/dev/null; then python=$candidate; break; fi
done
[[ -n $python ]] || { echo "install python3-websockets (apt) or websockets (pip)" >&2; exit 1; }

database_url=
if [[ ${BENCH_DATABASE:-sqlite} == postgres ]]; then
    # shellcheck disable=SC2086
    pg_start "$work/pg" -c max_connections=200 -c fsync=on ${BENCH_PG_OPTIONS:-}
fi

for n in "${counts[@]}"; do
    data=$work/data-$n
    port=$(free_port)
    if [[ -n $pg_dir ]]; then
        database_url=$(pg_createdb "bench$n")
    fi
    "$capstan" serve --data-dir "$data" --listen "127.0.0.1:$port" --log-level "${BENCH_LOG_LEVEL:-info}" \
        ${database_url:+--database-url "$database_url"} > "$work/server-$n.out" 2> "$work/server-$n.log" &
    server_pid=$!
    for _ in $(seq 100); do
        curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "== $n agents (${BENCH_DATABASE:-sqlite}, server pid $server_pid, port $port)" >&2
    # shellcheck disable=SC2086
    timeout 900 "$python" "$repo/Benchmarks/agent_load.py" --port "$port" --admin-token "$(cat "$data/admin-token")" \
        --agents "$n" --rounds "$rounds" --server-pid "$server_pid" \
        --procs "${BENCH_PROCS:-$((n >= 5000 ? 2 : 1))}" ${BENCH_EXTRA:-} | tee "$work/result-$n.json"
    # Capstan's figures beside the goals they are held to (there is no other server to compare with).
    "$python" - "$work/result-$n.json" <<'SUMMARY'
import json, sys
r = json.load(open(sys.argv[1]))
rows = [("agents connected per second", r["agents"] / r["connect_s"], None),
        ("idle memory per agent, KiB (goal <= 32)", r.get("rss_kib_per_agent"), 32)]
for x in r["rounds"]:
    rows.append((f"round {x['round']}: activate answered, ms (goal <= 1000)", x["activate_response_ms"], 1000))
    rows.append((f"round {x['round']}: last agent told, ms (goal <= 2000)", x["max_ms"], 2000))
    rows.append((f"round {x['round']}: agents not told (goal 0)", x["missing"], 0))
rows.append(("agents the server disconnected (goal 0)", r["closed_by_server"], 0))
rows.append(("deployments left Pending (goal 0)", r["pending_left"], 0))
print(f"| {'measurement':56} | {'capstan':>10} | {'goal':>6} | {'ratio':>6} |")
print(f"|{'-' * 58}|{'-' * 12}|{'-' * 8}|{'-' * 8}|")
for name, value, goal in rows:
    ratio = "-" if not goal or value is None else f"{value / goal:.2f}"
    shown = "-" if value is None else f"{value:.0f}" if isinstance(value, float) and value >= 100 else f"{value}"
    print(f"| {name:56} | {shown:>10} | {'-' if goal is None else goal:>6} | {ratio:>6} |")
SUMMARY
    echo "   server log: $(wc -l < "$work/server-$n.log") lines;" \
        "errors/warnings: $(grep -ciE 'error|warning' "$work/server-$n.log" || true)" >&2
    grep -iE 'error|warning' "$work/server-$n.log" | head -5 | cut -c1-400 >&2 || true
    if [[ -n ${BENCH_LOG_DIR:-} ]]; then
        mkdir -p "$BENCH_LOG_DIR" && cp "$work/server-$n.log" "$BENCH_LOG_DIR/"
        if [[ -n $pg_dir ]]; then cp "$pg_dir/log" "$BENCH_LOG_DIR/postgres-$n.log"; fi
    fi
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
done
