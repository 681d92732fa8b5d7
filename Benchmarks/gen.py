# Builder of the benchmark store paths (run by /bin/sh from the derivations in closure.nix).
# Deterministic: every byte comes from RNGs seeded by the derivation's SEED.
import os, random, sys

out = os.environ["out"]
kind = os.environ["KIND"]
size = int(os.environ["SIZE_KIB"]) << 10
rng = random.Random(int(os.environ["SEED"]))
os.makedirs(out)

words = ("nix store path closure derivation builder output hash narinfo cache substitute deploy agent "
         "server client upload download compress zstd stream buffer request response token signature "
         "error warning info debug reference deriver system profile switch generation").split()

def text_pool(n):
    lines, total = [], 0
    while total < n:
        line = "%08x %s %d %s\n" % (rng.getrandbits(32), " ".join(rng.choice(words) for _ in range(rng.randint(3, 14))),
                                     rng.randint(0, 99999), rng.choice(words))
        lines.append(line); total += len(line)
    return "".join(lines).encode()[:n]

def write_big(path, n, data):
    # The pool repeats only at distances far beyond zstd's window, so it compresses like fresh data.
    with open(path, "wb") as fh:
        left = n
        while left:
            k = min(left, len(data)); fh.write(data[:k]); left -= k

if kind == "random":
    # A few large incompressible files (images, archives, compiled blobs).
    parts = [size // 2, size // 4, size // 8, size - size // 2 - size // 4 - size // 8]
    pool = rng.randbytes(min(size, 64 << 20) or 1)
    for i, n in enumerate(parts):
        write_big(f"{out}/blob{i}.bin", n, pool[(i * 7919) % max(1, len(pool) - n):] if n < len(pool) else pool)
elif kind == "single":
    # One large incompressible file.
    write_big(f"{out}/big.bin", size, rng.randbytes(min(size, 64 << 20) or 1))
elif kind == "text":
    # One large compressible file (logs, documentation, JSON).
    write_big(f"{out}/data.txt", size, text_pool(min(size, 16 << 20) or 1))
elif kind == "files":
    # Many small files (a library or source tree), text and binary mixed, some executables and symlinks.
    binary = rng.randbytes(4 << 20)
    text = text_pool(4 << 20)
    total, n = 0, 0
    while total < size:
        d = os.path.join(out, "share" if n % 3 else "lib", f"d{n // 100:03}")
        os.makedirs(d, exist_ok=True)
        k = rng.choice([0, 16, 200, 1000, 2000, 4096, 8000, 12000, 30000, 60000])
        src = text if n % 2 else binary
        start = rng.randrange(0, len(src) - k)
        p = os.path.join(d, f"f{n:05}")
        with open(p, "wb") as fh: fh.write(src[start:start + k])
        if n % 10 == 0: os.chmod(p, 0o755)
        if n % 50 == 0: os.symlink(f"f{n:05}", p + ".link")
        total += k; n += 1
else:
    sys.exit("unknown KIND " + kind)

# References: name the dependencies' store paths in a file so Nix records them.
deps = os.environ.get("DEPS", "").split()
if deps:
    os.makedirs(out + "/nix-support", exist_ok=True)
    with open(out + "/nix-support/deps", "w") as fh: fh.write("\n".join(deps) + "\n")
