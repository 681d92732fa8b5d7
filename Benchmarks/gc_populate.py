#!/usr/bin/env python3
"""Fills a capstan SQLite database and blob directory with N synthetic paths of one cache, for
Benchmarks/gc.sh: closures of `depth` paths (each path refers to the next), every blob a small
file of its own, last used `age_days` ago; and one agent per `pin_every` closures, running the
closure's top path (pinned). Usage: gc_populate.py DATA_DIR CACHE N [depth] [pin_every] [age_days]"""
import os, random, sqlite3, sys, time, uuid

data, cache_name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
depth = int(sys.argv[4]) if len(sys.argv) > 4 else 10
pin_every = int(sys.argv[5]) if len(sys.argv) > 5 else 10
age_days = float(sys.argv[6]) if len(sys.argv) > 6 else 30
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
rng = random.Random(42)
def nix32(n=32): return "".join(rng.choice(alphabet) for _ in range(n))

db = sqlite3.connect(os.path.join(data, "capstan.sqlite"))
cache_id, workspace_id = db.execute("SELECT id, workspace_id FROM caches WHERE name = ?", (cache_name,)).fetchone()
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
        paths.append((cache_id, hash_part, "/nix/store/%s-%s" % (hash_part, name), "sha256:" + nix32(52), size * 3,
                      file_name, "sha256:" + nix32(52), size, "zstd", " ".join("%s-%s" % ref for ref in following),
                      None, "k:sig", None, used_ms, used_ms))
        refs.extend((cache_id, hash_part, ref[0]) for ref in following)
    if (start // depth) % pin_every == 0:
        agents.append((str(uuid.uuid4()), workspace_id, "agent-%d" % start, "/nix/store/%s-%s" % chain[0], now_ms))
db.executemany(
    "INSERT INTO paths (cache_id, hash_part, store_path, nar_hash, nar_size, file_name, file_hash, file_size, "
    "compression, refs, deriver, sigs, ca, created_at, last_accessed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", paths)
db.executemany("INSERT INTO path_references (cache_id, referrer, reference) VALUES (?,?,?)", refs)
db.executemany("INSERT INTO agents (id, workspace_id, name, current_store_path, created_at) VALUES (?,?,?,?,?)", agents)
db.commit()
print("%d paths, %d references, %d agents" % (len(paths), len(refs), len(agents)))
