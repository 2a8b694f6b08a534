#!/usr/bin/env python3
"""Makes the copier benchmark's small-file tree: N files (default 5,000) of
mixed sizes in folders a few levels deep, deterministic (seeded), so every
run and every tool copies the same bytes.

usage: make-tree.py DIR [N]
"""
import os
import random
import sys

root = sys.argv[1]
count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
rng = random.Random(17)
# Sizes like a source tree: mostly small, a tail of bigger files.
# With the default count, about 160 MiB in 5,000 files and ~90 folders.
SIZES = [(0.55, 0, 1024), (0.3, 1024, 16 << 10), (0.13, 16 << 10, 128 << 10),
         (0.018, 128 << 10, 1 << 20), (0.002, 1 << 20, 8 << 20)]
dirs = [root]
os.makedirs(root, exist_ok=True)
blob = os.urandom(8 << 20)
for i in range(count):
    if i % 40 == 0:
        parent = rng.choice(dirs)
        if parent.count(os.sep) - root.count(os.sep) < 4:
            d = os.path.join(parent, f"d{len(dirs):04}")
            os.makedirs(d, exist_ok=True)
            dirs.append(d)
    r, acc = rng.random(), 0.0
    for p, lo, hi in SIZES:
        acc += p
        if r <= acc:
            break
    size = rng.randint(lo, hi)
    start = rng.randint(0, len(blob) - size)
    with open(os.path.join(rng.choice(dirs[-8:]), f"f{i:05}.dat"), "wb") as f:
        f.write(blob[start:start + size])
