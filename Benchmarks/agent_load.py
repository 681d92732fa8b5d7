#!/usr/bin/env python3
"""Simulated agents for Benchmarks/agents.sh: N WebSocket agents speaking capstan's agent protocol.

Creates the agents and an activate token through the admin API, connects every agent (hello ->
welcome), then times activation rounds: from sending POST /api/v1/deploy/activate to each agent
receiving its `deploy` message. After each round the agents report the deployment started and
finished (as a real agent would), so the next round starts with nothing pending; `--no-ack` leaves
the deployments pending instead, so the next round also supersedes (cancels) them.

Also reads the server's RSS (VmRSS of --server-pid) before connecting and with every agent idle.
`--lock-db` holds the server's SQLite write lock for `--lock-seconds` while the agents report, as a
backup or a burst of writes would: the server must keep every agent connected meanwhile (the
deploy tests run it so). At the end it counts the agents the server disconnected and the
deployments left Pending. Prints one JSON object on stdout. Needs the `websockets` package.
`--procs K` spreads the agents over K forked load processes, so the client's own CPU is not what
the delivery times measure; receive times are taken on the machine-wide monotonic clock.
"""
import argparse
import asyncio
import http.client
import json
import multiprocessing
import random
import resource
import sqlite3
import threading
import statistics
import sys
import time

try:  # websockets 13 or newer
    from websockets.asyncio.client import connect

    HEADERS = "additional_headers"
except ImportError:  # Debian's python3-websockets (10.x)
    from websockets import connect

    HEADERS = "extra_headers"

NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class API:
    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token

    def get(self, path):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
            response = conn.getresponse()
            text = response.read()
            if response.status >= 300:
                raise RuntimeError(f"GET {path}: {response.status} {text[:300]!r}")
            return json.loads(text)
        finally:
            conn.close()

    def post(self, path, body):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        try:
            data = json.dumps(body).encode()
            conn.request("POST", path, body=data, headers={
                "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            response = conn.getresponse()
            text = response.read()
            if response.status >= 300:
                raise RuntimeError(f"POST {path}: {response.status} {text[:300]!r}")
            return json.loads(text)
        finally:
            conn.close()


class Agent:
    def __init__(self, name, token):
        self.name, self.token = name, token
        self.ws = None
        self.expected = None  # deployment id of the current round
        self.received_at = None
        self.done = None

    async def open(self, url):
        self.ws = await connect(
            url, **{HEADERS: {"Authorization": f"Bearer {self.token}"}},
            compression=None, ping_interval=None, max_queue=16, open_timeout=60)
        await self.ws.send(json.dumps({"type": "hello", "hello": {
            "name": self.name, "version": "bench", "system": "x86_64-linux",
            "currentStorePath": None, "runningDeployment": None}}))
        welcome = json.loads(await self.ws.recv())
        if welcome.get("type") != "welcome":
            raise RuntimeError(f"{self.name}: expected welcome, got {welcome}")

    async def listen(self):
        async for raw in self.ws:
            message = json.loads(raw)
            if message.get("type") == "deploy":
                now = time.monotonic()  # machine-wide: comparable across the load processes
                order = message["deployment"]
                if self.done is not None and not self.done.done():
                    self.received_at = now
                    self.expected = order["id"]
                    self.done.set_result(now)

    async def ack(self):
        await self.ws.send(json.dumps({"type": "started", "id": self.expected, "closureSize": None}))
        await self.ws.send(json.dumps({"type": "finished", "outcome": {
            "id": self.expected, "succeeded": True, "reason": None, "rolledBack": False,
            "currentStorePath": None}}))


def hold_write_lock(path, seconds, locked):
    """Holds SQLite's write lock on `path` for `seconds` (set `locked` once it is held)."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        db.execute("ROLLBACK")
    finally:
        locked.set()
        db.close()


def ws_closed(ws):
    closed = getattr(ws, "closed", None)  # websockets 10-12
    if closed is None:
        return ws.state.name in ("CLOSING", "CLOSED")
    return closed


def pct(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class Slice:
    """The agents one load process holds: connects them, arms them for a round, reports what arrived."""

    def __init__(self, agents, url):
        self.agents, self.url = agents, url

    async def run(self, conn):
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(64)

        async def open_one(agent):
            async with gate:
                await agent.open(self.url)

        t = time.perf_counter()
        await asyncio.gather(*[open_one(a) for a in self.agents])
        conn.send(("connected", time.perf_counter() - t))
        listeners = [asyncio.create_task(a.listen()) for a in self.agents]
        while True:
            command, value = await loop.run_in_executor(None, conn.recv)
            if command == "arm":
                for a in self.agents:
                    a.done = loop.create_future()
                    a.received_at = None
                conn.send(("armed", None))
            elif command == "collect":  # value: the deadline, on the machine-wide monotonic clock
                await asyncio.wait([a.done for a in self.agents], timeout=max(0, value - time.monotonic()))
                conn.send(("received", [(a.name, a.received_at, a.expected) for a in self.agents]))
            elif command == "ack":
                await asyncio.gather(*[a.ack() for a in self.agents if a.received_at is not None])
                conn.send(("acked", None))
            elif command == "close":
                closed = sum(1 for a in self.agents if ws_closed(a.ws))
                for task in listeners:
                    task.cancel()
                await asyncio.gather(*[a.ws.close() for a in self.agents], return_exceptions=True)
                conn.send(("closed", closed))
                return


def run_slice(agents, url, conn):
    asyncio.run(Slice(agents, url).run(conn))


def ask(conns, command, value=None):
    """Sends a command to every load process and returns their answers, in order."""
    for conn in conns:
        conn.send((command, value))
    return [conn.recv()[1] for conn in conns]


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--agents", type=int, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--server-pid", type=int)
    # The server reconciles an agent's deployments 10 s after it connects; measure after that.
    ap.add_argument("--idle-seconds", type=float, default=12)
    ap.add_argument("--no-ack", action="store_true")
    ap.add_argument("--settle-seconds", type=float, default=0,
                    help="pause after every outcome is recorded, before the next round")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--lock-db", help="the server's SQLite file, write-locked while the agents report")
    ap.add_argument("--lock-seconds", type=float, default=3)
    # One Python process spends about a second taking in 10,000 deploy messages; several share the work.
    ap.add_argument("--procs", type=int, default=1, help="load processes holding the agents")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    host = "127.0.0.1"
    admin = API(host, args.port, args.admin_token)
    log = lambda *a: print(*a, file=sys.stderr, flush=True)

    # Setup: agents (8 concurrent requests) and an activate token.
    names = [f"bench-{i:05d}" for i in range(args.agents)]
    t = time.perf_counter()
    created = await asyncio.gather(*[
        asyncio.to_thread(admin.post, "/api/v1/agents", {"name": n}) for n in names])
    agents = [Agent(n, c["token"]) for n, c in zip(names, created)]
    activate = API(host, args.port, admin.post("/api/v1/tokens", {"kind": "activate"})["token"])
    log(f"created {len(agents)} agents in {time.perf_counter() - t:.1f}s")

    result = {"agents": args.agents, "load_processes": args.procs}
    if args.server_pid:
        await asyncio.sleep(1)
        result["rss_kib_before_connect"] = rss_kib(args.server_pid)

    # Connect everyone from the load processes (bounded concurrency each) and wait for every welcome.
    url = f"ws://{host}:{args.port}/api/v1/agent/connect"
    context = multiprocessing.get_context("fork")
    conns, workers = [], []
    t = time.perf_counter()
    for k in range(args.procs):
        parent, child = context.Pipe()
        worker = context.Process(target=run_slice, args=(agents[k::args.procs], url, child), daemon=True)
        worker.start()
        conns.append(parent)
        workers.append(worker)
    await asyncio.to_thread(lambda: [conn.recv() for conn in conns])
    result["connect_s"] = round(time.perf_counter() - t, 3)
    log(f"{len(agents)} agents welcomed in {result['connect_s']}s by {args.procs} process(es)")

    await asyncio.sleep(args.idle_seconds)
    if args.server_pid:
        result["rss_kib_idle"] = rss_kib(args.server_pid)
        result["rss_kib_per_agent"] = round(
            (result["rss_kib_idle"] - result["rss_kib_before_connect"]) / args.agents, 1)

    rounds = []
    for r in range(args.rounds):
        await asyncio.to_thread(ask, conns, "arm")
        rand = random.Random(r)
        spec = {"agents": {a.name: "/nix/store/" + "".join(rand.choice(NIX32) for _ in range(32)) + "-bench-" + str(r)
                           for a in agents}}
        t0 = time.monotonic()
        response = await asyncio.to_thread(activate.post, "/api/v1/deploy/activate", spec)
        t_response = time.monotonic() - t0
        arrived = [row for rows in await asyncio.to_thread(ask, conns, "collect", t0 + args.timeout) for row in rows]
        ids = {name: v["id"] for name, v in response["agents"].items()}
        received = [(name, at, expected) for name, at, expected in arrived if at is not None]
        wrong = sum(1 for name, _, expected in received if ids.get(name) != expected)
        lat = [(at - t0) * 1000 for _, at, _ in received]
        row = {
            "round": r + 1, "activate_response_ms": round(t_response * 1000, 1),
            "received": len(lat), "missing": len(arrived) - len(lat), "wrong_id": wrong,
            "p50_ms": round(pct(lat, 50), 1) if lat else None,
            "p99_ms": round(pct(lat, 99), 1) if lat else None,
            "max_ms": round(max(lat), 1) if lat else None,
        }
        rounds.append(row)
        log(json.dumps(row))
        if not args.no_ack:
            locked = threading.Event()
            holder = None
            if args.lock_db:
                holder = threading.Thread(target=hold_write_lock, args=(args.lock_db, args.lock_seconds, locked))
                holder.start()
                locked.wait()
            await asyncio.to_thread(ask, conns, "ack")
            if holder:
                await asyncio.to_thread(holder.join)
            # Let the server record every outcome before the next round.
            for _ in range(600):
                busy = 0
                for status in ("Pending", "InProgress"):
                    busy += len(await asyncio.to_thread(admin.get, f"/api/v1/deployments?status={status}&limit=1"))
                if not busy:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(args.settle_seconds)
        else:
            await asyncio.sleep(0.5)
    result["rounds"] = rounds
    result["closed_by_server"] = sum(await asyncio.to_thread(ask, conns, "close"))
    for worker in workers:
        worker.join(timeout=30)
    result["pending_left"] = len(await asyncio.to_thread(admin.get, "/api/v1/deployments?status=Pending&limit=1000"))
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
