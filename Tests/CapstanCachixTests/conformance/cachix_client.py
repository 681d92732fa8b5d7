#!/usr/bin/env python3
"""A cachix client written from the wire protocol alone (docs/cachix.md), to check that a
server speaks it: it plays `cachix deploy agent`, `cachix deploy activate` and `cachix push`.

Tokens come from the environment as cachix reads them: CACHIX_AGENT_TOKEN,
CACHIX_ACTIVATE_TOKEN, CACHIX_AUTH_TOKEN. Results are printed as JSON lines on stdout
(one object each, with an "event" key) so that a test can check them; diagnostics go to stderr.
Exit status: 0 success, 1 a deployment or push failed, 2 the server refused, 3 the server broke
the protocol.
"""

import argparse
import asyncio
import base64
import datetime
import hashlib
import json
import lzma
import os
import platform
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

import websockets

FINAL_PREFIXES = ("Successfully activated the deployment", "Failed to activate the deployment")
FINAL_STATUSES = ("Cancelled", "Failed", "Succeeded")
NIX32 = "0123456789abcdfghijklmnpqrsvwxyz"


class ProtocolViolation(Exception):
    pass


class Refused(Exception):
    pass


def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)


def note(text):
    print(text, file=sys.stderr, flush=True)


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def nix32(digest):
    length = (len(digest) * 8 - 1) // 5 + 1
    out = []
    for n in range(length - 1, -1, -1):
        bit = n * 5
        i, j = bit // 8, bit % 8
        value = digest[i] >> j
        if i + 1 < len(digest):
            value |= digest[i + 1] << (8 - j)
        out.append(NIX32[value & 0x1F])
    return "".join(out)


class Server:
    def __init__(self, host, token):
        self.host = host.rstrip("/")
        self.token = token
        parsed = urllib.parse.urlparse(self.host)
        self.scheme = parsed.scheme
        self.netloc = parsed.netloc
        self.hostname = parsed.hostname

    def request(self, method, path, body=None, headers=None, url=None):
        data = None
        all_headers = dict(headers or {})
        if self.token and url is None:
            all_headers["Authorization"] = "Bearer " + self.token
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
            else:
                data = json.dumps(body).encode()
                all_headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url or self.host + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers

    def json(self, method, path, body=None):
        status, raw, _ = self.request(method, path, body)
        if status >= 300:
            raise Refused(f"{method} {path}: HTTP {status}: {raw.decode(errors='replace')}")
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ProtocolViolation(f"{method} {path}: answer is not JSON: {raw[:200]!r}")

    def ws_url(self, path):
        return ("wss" if self.scheme == "https" else "ws") + "://" + self.netloc + path

    def ws_headers(self, name=None, system=None):
        headers = {"Authorization": "Bearer " + self.token}
        if name is not None:
            headers.update({"name": name, "version": "1.11-conformance", "system": system})
        return headers

    async def connect(self, path, name=None, system=None):
        try:
            return await websockets.connect(
                self.ws_url(path), extra_headers=self.ws_headers(name, system), max_size=1 << 22, compression=None)
        except websockets.exceptions.InvalidStatusCode as error:
            raise Refused(f"WebSocket {path}: HTTP {error.status_code}")


def require(obj, keys, what):
    if not isinstance(obj, dict):
        raise ProtocolViolation(f"{what}: expected an object, got {obj!r}")
    missing = [key for key in keys if key not in obj]
    if missing:
        raise ProtocolViolation(f"{what}: missing {', '.join(missing)} in {obj!r}")


def envelope(method, command, agent):
    return json.dumps({"method": method, "command": command, "agent": agent, "id": str(uuid.uuid4())})


# ---------------------------------------------------------------- agent

def local_system():
    machine = platform.machine()
    arch = {"arm64": "aarch64", "amd64": "x86_64"}.get(machine, machine)
    return f"{arch}-{platform.system().lower()}"


async def run_agent(args):
    server = Server(args.host, os.environ["CACHIX_AGENT_TOKEN"])
    system = args.system or local_system()
    control = await server.connect("/ws", name=args.name, system=system)
    registered = None
    done = 0
    try:
        while done < args.deployments:
            message = json.loads(await control.recv())
            require(message, ["method", "command", "agent", "id"], "control message")
            command = message["command"]
            require(command, ["tag"], "command")
            if command["tag"] == "AgentRegistered":
                contents = command.get("contents")
                require(contents, ["cache", "id"], "AgentRegistered")
                if contents["cache"] is not None:
                    require(contents["cache"], ["cacheName", "publicKey", "isPublic"], "AgentRegistered.cache")
                registered = contents
                emit("registered", agentId=contents["id"], cache=contents["cache"], method=message["method"])
            elif command["tag"] == "Deployment":
                if registered is None:
                    raise ProtocolViolation("a Deployment came before AgentRegistered")
                details = command.get("contents")
                require(details, ["storePath", "id", "index", "rollbackScript"], "Deployment")
                emit("deployment", id=details["id"], index=details["index"], storePath=details["storePath"],
                     rollbackScript=details["rollbackScript"], method=message["method"])
                succeeded = await deploy(server, args, system, registered, details)
                emit("finished", id=details["id"], succeeded=succeeded)
                done += 1
            else:
                emit("unknown", tag=command["tag"])
    finally:
        await control.close()
    return 0


async def deploy(server, args, system, registered, details):
    """One deployment, as the agent's child process would run it."""
    events = await server.connect("/ws-deployment", name=args.name, system=system)
    log = await server.connect(f"/api/v1/deploy/log/{details['id']}", name=args.name, system=system)
    agent_id = registered["id"]

    async def started(closure_size):
        await events.send(envelope("DeploymentStarted", {
            "tag": "DeploymentStarted", "id": details["id"], "time": now(), "closureSize": closure_size}, agent_id))

    async def say(line):
        await log.send(json.dumps({"line": line, "time": now()}))

    async def run(command, env=None):
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env)
        while True:
            line = await process.stdout.readline()
            if not line:
                break
            await say(line.decode(errors="replace").rstrip("\n"))
        return await process.wait()

    path = details["storePath"]
    succeeded = False
    try:
        await started(None)
        await say(f"Deploying {path} (#{details['index']})")
        cache = registered["cache"]
        nix_args = []
        env = dict(os.environ)
        if cache is not None:
            substituter = f"{server.scheme}://{cache['cacheName']}.{server.netloc}"
            key = f"{cache['cacheName']}.{server.hostname}-1:{cache['publicKey']}"
            nix_args = ["--option", "substituters", substituter, "--option", "trusted-public-keys", key]
            if not cache["isPublic"]:
                netrc = os.path.join(args.work_dir, f"netrc-{details['id']}")
                with open(netrc, "w") as handle:
                    handle.write(f"machine {cache['cacheName']}.{server.hostname} password {server.token}\n")
                nix_args += ["--option", "netrc-file", netrc]
        if await run(["nix-store", "-r", path] + nix_args, env) != 0:
            await say(f"cannot realise {path}")
            return False
        size = subprocess.run(["nix", "path-info", "-S", "--json", path], capture_output=True, text=True)
        closure_size = None
        if size.returncode == 0:
            closure_size = json.loads(size.stdout)[0].get("closureSize")
        await started(closure_size)
        for candidate, extra in (("bin/switch-to-configuration", ["switch"]), ("activate", [])):
            script = os.path.join(path, candidate)
            if os.access(script, os.X_OK):
                status = await run([script] + extra, env)
                if status != 0:
                    await say(f"{candidate} exited with {status}; rolling back")
                    return False
                break
        pong = await events.ping()
        await asyncio.wait_for(pong, timeout=10)
        if details["rollbackScript"]:
            if await run(["nix-store", "-r", details["rollbackScript"]] + nix_args, env) != 0:
                return False
            status = await run([details["rollbackScript"]], env)
            if status != 0:
                await say(f"the rollback script exited with {status}; rolling back")
                return False
        succeeded = True
        return True
    finally:
        # The log first, so that its lines are in before the outcome (and the server's final line).
        await log.close()
        await events.send(envelope("DeploymentFinished", {
            "tag": "DeploymentFinished", "id": details["id"], "time": now(), "hasSucceeded": succeeded}, agent_id))
        await events.close()


# ---------------------------------------------------------------- activate

async def run_activate(args):
    server = Server(args.host, os.environ["CACHIX_ACTIVATE_TOKEN"])
    with open(args.deploy_json) as handle:
        spec = json.load(handle)
    answer = await asyncio.to_thread(server.json, "POST", "/api/v2/deploy/activate", spec)
    require(answer, ["agents"], "activate answer")
    agents = answer["agents"]
    for name, created in sorted(agents.items()):
        require(created, ["id", "url"], f"activate answer for {name}")
        emit("created", agent=name, id=created["id"], url=created["url"])
    chosen = {name: created for name, created in agents.items() if not args.agent or name in args.agent}
    if args.async_:
        return 0
    results = await asyncio.gather(*(follow(server, name, created["id"], args) for name, created in chosen.items()))
    return 0 if all(status == "Succeeded" for status in results) else 1


async def follow(server, name, deployment_id, args):
    final_line = None

    async def read_log():
        nonlocal final_line
        connection = await server.connect(f"/api/v1/deploy/log/{deployment_id}?view=true")
        try:
            async for frame in connection:
                item = json.loads(frame)
                require(item, ["line", "time"], "log frame")
                emit("log", agent=name, line=item["line"], time=item["time"])
                if item["line"].startswith(FINAL_PREFIXES):
                    final_line = item["line"]
                    return
        finally:
            await connection.close()

    async def poll():
        while True:
            deployment = await asyncio.to_thread(server.json, "GET", f"/api/v1/deploy/deployment/{deployment_id}")
            require(deployment, ["id", "index", "createdOn", "storePath", "status"], "deployment")
            if deployment["status"] in FINAL_STATUSES:
                return deployment
            await asyncio.sleep(args.poll_interval)

    log_task = asyncio.create_task(read_log())
    deployment = await poll()
    try:
        await asyncio.wait_for(log_task, timeout=30)
    except asyncio.TimeoutError:
        note(f"{name}: the log did not reach a final line")
    emit("deployment", agent=name, id=deployment["id"], index=deployment["index"], status=deployment["status"],
         storePath=deployment["storePath"], closureSize=deployment.get("closureSize"),
         startedOn=deployment.get("startedOn"), finishedOn=deployment.get("finishedOn"), finalLine=final_line)
    return deployment["status"]


# ---------------------------------------------------------------- push

def nix_query(*arguments):
    result = subprocess.run(["nix-store", "-q", *arguments], capture_output=True, text=True, check=True)
    return [line for line in result.stdout.split("\n") if line]


def compress(data, method):
    if method == "xz":
        return lzma.compress(data)
    return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout


def run_push(args):
    server = Server(args.host, os.environ.get("CACHIX_AUTH_TOKEN"))
    cache = server.json("GET", f"/api/v1/cache/{args.cache}")
    require(cache, ["name", "uri", "isPublic", "publicSigningKeys", "permission", "preferredCompressionMethod"], "cache")
    emit("cache", **cache)
    method = "xz" if cache["preferredCompressionMethod"] == "XZ" else "zst"
    closure = nix_query("-R", *args.paths)
    hashes = {os.path.basename(path)[:32]: path for path in closure}
    missing = server.json("POST", f"/api/v1/cache/{args.cache}/narinfo", list(hashes))
    emit("missing", hashes=missing)
    for hash_part in missing:
        push_path(server, args, hashes[hash_part], method)
    return 0


def push_path(server, args, path, method):
    nar = subprocess.run(["nix-store", "--dump", path], capture_output=True, check=True).stdout
    compressed = compress(nar, method)
    base = f"/api/v1/cache/{args.cache}/multipart-nar"
    started = server.json("POST", f"{base}?compression={method}")
    require(started, ["narId", "uploadId"], "multipart-nar")
    nar_id, upload_id = started["narId"], started["uploadId"]
    query = "uploadId=" + urllib.parse.quote(upload_id)
    try:
        parts = []
        for offset in range(0, max(len(compressed), 1), args.part_size):
            number = len(parts) + 1
            chunk = compressed[offset:offset + args.part_size]
            md5 = base64.b64encode(hashlib.md5(chunk).digest()).decode()
            target = server.json("POST", f"{base}/{nar_id}?{query}&partNumber={number}", {"contentMD5": md5})
            require(target, ["uploadUrl"], "upload part")
            status, raw, headers = server.request("PUT", None, chunk, {"Content-MD5": md5}, url=target["uploadUrl"])
            if status >= 300:
                raise Refused(f"PUT part {number}: HTTP {status}: {raw.decode(errors='replace')}")
            if not headers.get("ETag"):
                raise ProtocolViolation(f"PUT part {number}: no ETag in the answer")
            parts.append({"partNumber": number, "eTag": headers["ETag"]})
        base_name = os.path.basename(path)
        deriver = nix_query("--deriver", path)[0]
        create = {
            "cStoreHash": base_name[:32],
            "cStoreSuffix": base_name[33:],
            "cNarHash": "sha256:" + nix32(hashlib.sha256(nar).digest()),
            "cNarSize": len(nar),
            "cFileHash": hashlib.sha256(compressed).hexdigest(),
            "cFileSize": len(compressed),
            "cReferences": [os.path.basename(ref) for ref in nix_query("--references", path)],
            "cDeriver": os.path.basename(deriver) if deriver != "unknown-deriver" else "unknown-deriver",
            "cSig": args.signature,
        }
        server.json("POST", f"{base}/{nar_id}/complete?{query}", {"parts": parts, "narInfoCreate": create})
        emit("pushed", path=path, parts=len(parts), narSize=len(nar))
    except BaseException:
        server.request("POST", f"{base}/{nar_id}/abort?{query}")
        raise


# ---------------------------------------------------------------- single agent messages

async def run_log(args):
    server = Server(args.host, os.environ["CACHIX_AGENT_TOKEN"])
    connection = await server.connect(f"/api/v1/deploy/log/{args.deployment}", name=args.name, system=local_system())
    try:
        for line in args.lines:
            await connection.send(json.dumps({"line": line, "time": now()}))
    finally:
        await connection.close()
    emit("logged", count=len(args.lines))
    return 0


async def run_report(args):
    server = Server(args.host, os.environ["CACHIX_AGENT_TOKEN"])
    connection = await server.connect("/ws-deployment", name=args.name, system=local_system())
    try:
        if args.what == "started":
            command = {"tag": "DeploymentStarted", "id": args.deployment, "time": now(), "closureSize": None}
        else:
            command = {"tag": "DeploymentFinished", "id": args.deployment, "time": now(),
                       "hasSucceeded": args.what == "succeeded"}
        await connection.send(envelope(command["tag"], command, None))
    finally:
        await connection.close()
    emit("reported", what=args.what)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", required=True, help="the server, e.g. http://127.0.0.1:8080")
    commands = parser.add_subparsers(dest="command", required=True)
    agent = commands.add_parser("agent", help="run as a deploy agent")
    agent.add_argument("name")
    agent.add_argument("--deployments", type=int, default=1, help="exit after this many deployments")
    agent.add_argument("--system", help="the system header (default: this machine's)")
    agent.add_argument("--work-dir", default=os.environ.get("TMPDIR", "/tmp"))
    activate = commands.add_parser("activate", help="activate a deploy.json and wait for it")
    activate.add_argument("deploy_json")
    activate.add_argument("--agent", action="append")
    activate.add_argument("--async", dest="async_", action="store_true")
    activate.add_argument("--poll-interval", type=float, default=2.0)
    push = commands.add_parser("push", help="push store paths and their closures")
    push.add_argument("cache")
    push.add_argument("paths", nargs="+")
    push.add_argument("--part-size", type=int, default=32 << 20)
    push.add_argument("--signature", help="cSig to send (bare base64); default none, the server signs")
    log = commands.add_parser("log", help="write lines to a deployment's log, as its agent")
    log.add_argument("name")
    log.add_argument("deployment")
    log.add_argument("lines", nargs="+")
    report = commands.add_parser("report", help="report a deployment event, as its agent")
    report.add_argument("name")
    report.add_argument("deployment")
    report.add_argument("what", choices=["started", "succeeded", "failed"])
    args = parser.parse_args()
    try:
        if args.command == "agent":
            return asyncio.run(run_agent(args))
        if args.command == "activate":
            return asyncio.run(run_activate(args))
        if args.command == "push":
            return run_push(args)
        if args.command == "log":
            return asyncio.run(run_log(args))
        return asyncio.run(run_report(args))
    except Refused as error:
        emit("refused", reason=str(error))
        note(f"refused: {error}")
        return 2
    except websockets.exceptions.ConnectionClosed as error:
        emit("closed", code=error.code, reason=error.reason)
        note(f"the server closed the connection: {error.code} {error.reason}")
        return 2
    except ProtocolViolation as error:
        emit("violation", reason=str(error))
        note(f"protocol violation: {error}")
        return 3


if __name__ == "__main__":
    sys.exit(main())
