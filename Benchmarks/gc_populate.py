#!/usr/bin/env python3
"""Fills a capstan database and blob directory with N synthetic paths of one cache, for
Benchmarks/gc.sh: closures of `depth` paths (each path refers to the next), every blob a small
file of its own, last used `age_days` ago; and one agent per `pin_every` closures, running the
closure's top path (pinned). The database is the data directory's SQLite file, or with
--database-url the PostgreSQL database at that URL, loaded with COPY through psql (then vacuumed
and analysed, as autovacuum would after such a load). Blobs are files in DATA_DIR either way.
Usage: gc_populate.py [--database-url URL] DATA_DIR CACHE N [depth] [pin_every] [age_days]"""
import os, random, sqlite3, subprocess, sys, time, uuid

args = sys.argv[1:]
database_url = None
if args[:1] == ["--database-url"]:
    database_url, args = args[1], args[2:]
data, cache_name, count = args[0], args[1], int(args[2])
depth = int(args[3]) if len(args) > 3 else 10
pin_every = int(args[4]) if len(args) > 4 else 10
age_days = float(args[5]) if len(args) > 5 else 30
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
rng = random.Random(42)
def nix32(n=32): return "".join(rng.choice(alphabet) for _ in range(n))

# The rows, the same for both databases.
PATH_COLUMNS = ("cache_id", "hash_part", "store_path", "nar_hash", "nar_size", "file_name", "file_hash", "file_size",
                "compression", "refs", "deriver", "sigs", "ca", "created_at", "last_accessed_at")
REFERENCE_COLUMNS = ("cache_id", "referrer", "reference")
AGENT_COLUMNS = ("id", "workspace_id", "name", "current_store_path", "created_at")

def generate(cache_id, workspace_id):
    """Writes the blob files; returns the rows of paths, path_references and agents."""
    now_ms = int(time.time() * 1000)
    used_ms = now_ms - int(age_days * 86400 * 1000)
    nar_dir = os.path.join(data, "blobs", "nar")
    os.makedirs(nar_dir, exist_ok=True)
    paths, refs, agents = [], [], []
    for start in range(0, count, depth):
        chain = [(nix32(), "p%d" % i) for i in range(start, min(start + depth, count))]
        for position, (hash_part, name) in enumerate(chain):
            file_name = nix32(52) + ".nar.zst"
            size = rng.randint(200, 4000)
            with open(os.path.join(nar_dir, file_name), "wb") as blob:
                blob.write(b"\0" * 64)
            following = chain[position + 1:position + 2]
            paths.append((cache_id, hash_part, "/nix/store/%s-%s" % (hash_part, name), "sha256:" + nix32(52),
                          size * 3, file_name, "sha256:" + nix32(52), size, "zstd",
                          " ".join("%s-%s" % ref for ref in following), None, "k:sig", None, used_ms, used_ms))
            refs.extend((cache_id, hash_part, ref[0]) for ref in following)
        if (start // depth) % pin_every == 0:
            agents.append((str(uuid.uuid4()), workspace_id, "agent-%d" % start, "/nix/store/%s-%s" % chain[0], now_ms))
    return paths, refs, agents

def pinned(paths, agents):
    """Paths in the closures the agents run (each closure is the chain below its top path)."""
    below = {row[1]: row[9].split("-", 1)[0] if row[9] else None for row in paths}
    total = 0
    for agent in agents:
        hash_part = agent[3][len("/nix/store/"):].split("-", 1)[0]
        while hash_part:
            total += 1
            hash_part = below[hash_part]
    return total

def insert(table, columns):
    return "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(columns), ",".join("?" * len(columns)))

def load_sqlite():
    db = sqlite3.connect(os.path.join(data, "capstan.sqlite"))
    cache_id, workspace_id = db.execute("SELECT id, workspace_id FROM caches WHERE name = ?", (cache_name,)).fetchone()
    paths, refs, agents = generate(cache_id, workspace_id)
    db.executemany(insert("paths", PATH_COLUMNS), paths)
    db.executemany(insert("path_references", REFERENCE_COLUMNS), refs)
    db.executemany(insert("agents", AGENT_COLUMNS), agents)
    db.commit()
    return paths, refs, agents

def copy_field(value):
    """A value in COPY's text format."""
    if value is None:
        return "\\N"
    return (str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))

def load_postgres():
    psql = ["psql", database_url, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    quoted = "'" + cache_name.replace("'", "''") + "'"
    found = subprocess.run(psql + ["-A", "-t", "-F", "\t", "-c",
                                   "SELECT id, workspace_id FROM caches WHERE name = %s" % quoted],
                           check=True, capture_output=True, text=True).stdout.split()
    cache_id, workspace_id = found
    paths, refs, agents = generate(cache_id, workspace_id)
    loader = subprocess.Popen(psql, stdin=subprocess.PIPE, text=True)
    loader.stdin.write("BEGIN;\n")
    for table, columns, rows in (("paths", PATH_COLUMNS, paths), ("path_references", REFERENCE_COLUMNS, refs),
                                 ("agents", AGENT_COLUMNS, agents)):
        loader.stdin.write("COPY %s (%s) FROM STDIN;\n" % (table, ", ".join(columns)))
        for row in rows:
            loader.stdin.write("\t".join(copy_field(value) for value in row) + "\n")
        loader.stdin.write("\\.\n")
    loader.stdin.write("COMMIT;\nVACUUM ANALYZE paths;\nVACUUM ANALYZE path_references;\nVACUUM ANALYZE agents;\n")
    loader.stdin.close()
    if loader.wait() != 0:
        sys.exit("psql failed")
    return paths, refs, agents

paths, refs, agents = load_postgres() if database_url else load_sqlite()
print("%d paths, %d references, %d agents pinning %d paths" % (len(paths), len(refs), len(agents),
                                                               pinned(paths, agents)))
