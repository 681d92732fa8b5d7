#!/usr/bin/env python3
"""Holds N idle agent connections to a Capstan server until the server closes them.

Creates the agents through the admin API (unless they exist), connects every one (hello ->
welcome), prints `connected N` and then waits; when the server closes the connections (graceful
shutdown), prints `closed N SECONDS` with the time from the first close to the last. Used by the
shutdown test (Tests/CapstanServerTests/ShutdownTests.swift) and by hand, e.g.:

    python3 Benchmarks/agent_hold.py --port 8080 --admin-token "$(cat data/admin-token)" --agents 10000

Needs the `websockets` package (Debian's python3-websockets, 10.x or newer).
"""
import argparse
import asyncio
import http.client
import json
import resource
import sys
import time

import websockets


def post(port, token, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(), headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read()
        if response.status >= 300:
            raise RuntimeError(f"POST {path}: {response.status} {text[:300]!r}")
        return json.loads(text)
    finally:
        conn.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--admin-token", required=True)
    ap.add_argument("--agents", type=int, required=True)
    ap.add_argument("--prefix", default="held")
    ap.add_argument("--wait", type=float, default=600, help="seconds to wait for the server to close them")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    log = lambda *a: print(*a, file=sys.stderr, flush=True)

    gate = asyncio.Semaphore(8)

    async def create(name):
        async with gate:
            return (await asyncio.to_thread(post, args.port, args.admin_token, "/api/v1/agents", {"name": name}))["token"]

    names = [f"{args.prefix}-{i:05d}" for i in range(args.agents)]
    t = time.perf_counter()
    tokens = await asyncio.gather(*[create(n) for n in names])
    log(f"created {len(tokens)} agents in {time.perf_counter() - t:.1f}s")

    connect_gate = asyncio.Semaphore(64)
    closed_at = []

    async def hold(name, token, connected):
        async with connect_gate:
            ws = await websockets.connect(
                f"ws://127.0.0.1:{args.port}/api/v1/agent/connect",
                extra_headers={"Authorization": f"Bearer {token}"},
                compression=None, ping_interval=None, open_timeout=120, close_timeout=10)
            await ws.send(json.dumps({"type": "hello", "hello": {
                "name": name, "version": "hold", "system": "x86_64-linux",
                "currentStorePath": None, "runningDeployment": None}}))
            welcome = json.loads(await ws.recv())
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"{name}: expected welcome, got {welcome}")
        connected.append(name)
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed:
            pass
        closed_at.append(time.perf_counter())

    connected = []
    t = time.perf_counter()
    tasks = [asyncio.create_task(hold(n, tok, connected)) for n, tok in zip(names, tokens)]
    while len(connected) < len(tasks):
        failed = [task for task in tasks if task.done() and task.exception()]
        if failed:
            raise failed[0].exception()
        await asyncio.sleep(0.05)
    log(f"{len(connected)} agents connected in {time.perf_counter() - t:.1f}s")
    print("connected", len(connected), flush=True)
    done, pending = await asyncio.wait(tasks, timeout=args.wait)
    spread = max(closed_at) - min(closed_at) if closed_at else 0
    print("closed", len(closed_at), f"{spread:.2f}", flush=True)
    for task in pending:
        task.cancel()


asyncio.run(main())
